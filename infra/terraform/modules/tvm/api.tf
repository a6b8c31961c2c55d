resource "aws_cloudwatch_log_group" "api" {
  #checkov:skip=CKV_AWS_158:Access logs carry no secrets (no headers are logged); CloudWatch Logs encrypts at rest with its own key.
  #checkov:skip=CKV_AWS_338:Retention is the caller's choice (log_retention_days).
  name              = "/aws/apigateway/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_apigatewayv2_api" "tvm" {
  name          = var.name
  protocol_type = "HTTP"
  tags          = var.tags

  # API Gateway answers preflights itself (they carry no SigV4); the same
  # headers as the function's (routes/cors.rs).
  dynamic "cors_configuration" {
    for_each = length(var.cors_origins) > 0 ? [1] : []
    content {
      allow_origins  = var.cors_origins
      allow_methods  = ["GET", "POST"]
      allow_headers  = ["authorization", "content-type", "x-amz-content-sha256", "x-amz-date", "x-amz-security-token", "x-tvm-identity"]
      expose_headers = ["retry-after"]
      max_age        = 600
    }
  }
}

resource "aws_apigatewayv2_integration" "tvm" {
  api_id                 = aws_apigatewayv2_api.tvm.id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_alias.live.invoke_arn
  payload_format_version = "2.0"
}

locals {
  # Every route is AWS_IAM (SigV4) but the health check.
  routes = {
    "POST /v1/credentials"        = "AWS_IAM"
    "GET /v1/profiles"            = "AWS_IAM"
    "ANY /v1/requests"            = "AWS_IAM"
    "ANY /v1/requests/{proxy+}"   = "AWS_IAM"
    "ANY /v1/breakglass"          = "AWS_IAM"
    "ANY /v1/breakglass/{proxy+}" = "AWS_IAM"
    "ANY /v1/sessions"            = "AWS_IAM"
    "ANY /v1/sessions/{proxy+}"   = "AWS_IAM"
    "POST /v1/callers/revoke"     = "AWS_IAM"
    "GET /v1/health"              = "NONE"
  }
}

resource "aws_apigatewayv2_route" "tvm" {
  #checkov:skip=CKV_AWS_309:Every route but the health check is AWS_IAM (see local.routes); health carries no data.
  for_each           = local.routes
  api_id             = aws_apigatewayv2_api.tvm.id
  route_key          = each.key
  authorization_type = each.value
  target             = "integrations/${aws_apigatewayv2_integration.tvm.id}"
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.tvm.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_burst_limit = 200
    throttling_rate_limit  = 100
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api.arn
    format = jsonencode({
      requestId = "$context.requestId"
      caller    = "$context.identity.userArn"
      route     = "$context.routeKey"
      status    = "$context.status"
      latency   = "$context.responseLatency"
      ip        = "$context.identity.sourceIp"
    })
  }
  tags = var.tags
}

resource "aws_lambda_permission" "api" {
  statement_id  = "AllowApiGatewayInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.tvm.function_name
  qualifier     = aws_lambda_alias.live.name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.tvm.execution_arn}/*/*"
}
