output "endpoint" {
  description = "The tvm API (TVM_ENDPOINT for clients)."
  value       = aws_apigatewayv2_api.tvm.api_endpoint
}

output "api_execution_arn" {
  description = "For callers' execute-api:Invoke policies: \"<this>/*/POST/v1/credentials\"."
  value       = aws_apigatewayv2_api.tvm.execution_arn
}

output "function_role_arn" {
  description = "The execution role protected roles must trust (and only it): tvm_function_role_arn of modules/protected-role."
  value       = aws_iam_role.function.arn
}

output "function_name" {
  description = "The function's name (the metrics' service dimension)."
  value       = aws_lambda_function.tvm.function_name
}

output "function_alias_arn" {
  description = "The alias the API invokes; every apply of new code moves it to the new version."
  value       = aws_lambda_alias.live.arn
}

output "function_environment" {
  description = "The function's environment as deployed (names and settings only, no secrets): what make test runs the bootstrap with."
  value       = aws_lambda_function.tvm.environment[0].variables
}

output "tables" {
  description = "Table names by purpose."
  value = {
    sessions   = aws_dynamodb_table.sessions.name
    approvals  = aws_dynamodb_table.approvals.name
    breakglass = aws_dynamodb_table.breakglass.name
  }
}

output "notify_topic_arn" {
  description = "SNS topic of approval, break-glass and revocation events, if enabled."
  value       = var.enable_notifications ? aws_sns_topic.notify[0].arn : null
}

output "alarm_topic_arn" {
  description = "SNS topic the alarms publish to; subscribe your pager."
  value       = aws_sns_topic.alarms.arn
}

output "dashboard_name" {
  description = "The CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.tvm.dashboard_name
}

output "policy_parameters" {
  description = "The SSM parameters created from var.policies, by profile."
  value       = { for k, p in aws_ssm_parameter.policy : k => p.name }
}

output "revoker_role" {
  description = "TVM_REVOKER_ROLE: pass to modules/protected-role (revoker_role) so that the account resources it creates have the names the function writes to."
  value       = var.revoker_role
}

output "revocation_policy" {
  description = "TVM_REVOCATION_POLICY: pass to modules/protected-role (revocation_policy)."
  value       = var.revocation_policy
}
