output "endpoint" {
  description = "The tvm API (TVM_ENDPOINT for clients)."
  value       = aws_apigatewayv2_api.tvm.api_endpoint
}

output "api_execution_arn" {
  description = "For callers' execute-api:Invoke policies: \"<this>/*/POST/v1/credentials\"."
  value       = aws_apigatewayv2_api.tvm.execution_arn
}

output "function_role_arn" {
  description = "The execution role protected roles must trust (and only it)."
  value       = aws_iam_role.function.arn
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
