# Alarms (docs/operations.md is the runbook of each), a dashboard and Logs
# Insights queries over the decision log. The metrics come from the
# decision line itself (CloudWatch embedded metric format, namespace tvm,
# dimension service = the function's name). The same as template.yaml's.

locals {
  service = aws_lambda_function.tvm.function_name
  # name => [namespace, metric, statistic, period, periods, threshold, runbook]
  alarms = {
    "dependency-failures"       = ["tvm", "DependencyFailures", "Sum", 300, 1, 5, "tvm could not reach an AWS service it needs (STS, SSM, DynamoDB, IAM, SNS); callers got 503. Runbook - docs/operations.md#dependency-failures"]
    "function-errors"           = ["AWS/Lambda", "Errors", "Sum", 300, 1, 1, "The function failed an invocation (a crash, a timeout, a bad configuration at cold start) instead of answering. Runbook - docs/operations.md#function-errors"]
    "function-throttles"        = ["AWS/Lambda", "Throttles", "Sum", 300, 1, 1, "Lambda throttled invocations (account or reserved concurrency); callers got 429/503 from API Gateway. Runbook - docs/operations.md#function-throttles"]
    "policy-refresh-failing"    = ["tvm", "PolicyRefreshFailures", "Sum", 300, 2, 1, "Policy loads from SSM failed in two 5-minute periods in a row; the function serves its last good set until max-stale, then fails closed. Runbook - docs/operations.md#policy-refresh-failing"]
    "policy-signature-rejected" = ["tvm", "PolicySignatureRejections", "Sum", 300, 1, 1, "A policy document in SSM is unsigned or its signature does not verify with the signing key; its profile does not vend. Runbook - docs/operations.md#policy-signature-rejected"]
    "break-glass-opened"        = ["tvm", "BreakGlassOpened", "Sum", 60, 1, 1, "Someone opened a break-glass event. Runbook - docs/operations.md#break-glass-opened"]
  }
}

# Not encrypted with alias/aws/sns: CloudWatch cannot use that key (its
# policy cannot be changed), and alarms would never be delivered.
resource "aws_sns_topic" "alarms" {
  #checkov:skip=CKV_AWS_26:CloudWatch alarms cannot publish to a topic encrypted with the AWS managed key; alarm messages carry alarm names and thresholds only.
  name = "${var.name}-alarms"
  tags = var.tags
}

resource "aws_sns_topic_policy" "alarms" {
  arn = aws_sns_topic.alarms.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "CloudWatchAlarms"
      Effect    = "Allow"
      Principal = { Service = "cloudwatch.amazonaws.com" }
      Action    = "sns:Publish"
      Resource  = aws_sns_topic.alarms.arn
      Condition = { ArnLike = { "aws:SourceArn" = "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:*" } }
    }]
  })
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count     = var.alarm_email == "" ? 0 : 1
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

resource "aws_sns_topic_subscription" "notification_email" {
  count     = var.enable_notifications && var.notification_email != "" ? 1 : 0
  topic_arn = aws_sns_topic.notify[0].arn
  protocol  = "email"
  endpoint  = var.notification_email
}

resource "aws_sns_topic_subscription" "notification_https" {
  count     = var.enable_notifications && var.notification_https_url != "" ? 1 : 0
  topic_arn = aws_sns_topic.notify[0].arn
  protocol  = "https"
  endpoint  = var.notification_https_url
}

resource "aws_cloudwatch_metric_alarm" "tvm" {
  for_each            = local.alarms
  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value[6]
  namespace           = each.value[0]
  metric_name         = each.value[1]
  dimensions          = each.value[0] == "tvm" ? { service = local.service } : { FunctionName = local.service }
  statistic           = each.value[2]
  period              = each.value[3]
  evaluation_periods  = each.value[4]
  datapoints_to_alarm = each.value[4]
  threshold           = each.value[5]
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = each.key == "break-glass-opened" ? [] : [aws_sns_topic.alarms.arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "server_error_rate" {
  alarm_name          = "${var.name}-5xx-rate"
  alarm_description   = "More than 5% of requests answered 5xx over 5 minutes (at least 10 requests). Runbook - docs/operations.md#5xx-rate"
  evaluation_periods  = 1
  threshold           = 5
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = var.tags

  metric_query {
    id          = "rate"
    expression  = "IF(requests >= 10, 100 * errors / requests, 0)"
    label       = "5xx percent"
    return_data = true
  }
  dynamic "metric_query" {
    for_each = { errors = "ServerErrors", requests = "Requests" }
    content {
      id = metric_query.key
      metric {
        namespace   = "tvm"
        metric_name = metric_query.value
        dimensions  = { service = local.service }
        period      = 300
        stat        = "Sum"
      }
    }
  }
}

resource "aws_cloudwatch_dashboard" "tvm" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = [
      { type = "metric", x = 0, y = 0, width = 12, height = 6, properties = {
        title   = "Requests, vends, refusals, 5xx", region = local.region, stat = "Sum", period = 60
        metrics = [["tvm", "Requests", "service", local.service], [".", "Vends", ".", "."], [".", "Refusals", ".", "."], [".", "ServerErrors", ".", "."]]
      } },
      { type = "metric", x = 12, y = 0, width = 12, height = 6, properties = {
        title   = "Latency (ms)", region = local.region, period = 60
        metrics = [["tvm", "latency_ms", "service", local.service, { stat = "p50" }], ["...", { stat = "p99" }], ["...", { stat = "Maximum" }]]
      } },
      { type = "metric", x = 0, y = 6, width = 12, height = 6, properties = {
        title   = "Refusals by code", region = local.region, stat = "Sum", period = 300
        metrics = [[{ expression = "SEARCH('{tvm,code,service} MetricName=\"Refusals\" service=\"${local.service}\"', 'Sum', 300)", id = "codes" }]]
      } },
      { type = "metric", x = 12, y = 6, width = 12, height = 6, properties = {
        title   = "Dependency failures", region = local.region, stat = "Sum", period = 300
        metrics = [[{ expression = "SEARCH('{tvm,dependency,service} MetricName=\"DependencyFailures\" service=\"${local.service}\"', 'Sum', 300)", id = "deps" }]]
      } },
      { type = "metric", x = 0, y = 12, width = 12, height = 6, properties = {
        title   = "Policy set age (s) and load failures", region = local.region, period = 60
        metrics = [["tvm", "PolicyAge", "service", local.service, { stat = "Maximum" }], [".", "PolicyRefreshFailures", ".", ".", { stat = "Sum" }]]
      } },
      { type = "metric", x = 12, y = 12, width = 12, height = 6, properties = {
        title   = "Function", region = local.region, stat = "Sum", period = 60
        metrics = [["AWS/Lambda", "Invocations", "FunctionName", local.service], [".", "Errors", ".", "."], [".", "Throttles", ".", "."], [".", "ConcurrentExecutions", ".", ".", { stat = "Maximum" }]]
      } },
    ]
  })
}

resource "aws_cloudwatch_query_definition" "tvm" {
  for_each        = var.saved_queries ? local.queries : {}
  name            = "tvm/${var.name}/${each.key}"
  log_group_names = [aws_cloudwatch_log_group.function.name]
  query_string    = each.value
}

locals {
  queries = {
    "refusals-by-code-and-caller" = <<-EOT
      filter type = "decision" and status >= 400 and status < 500
      | stats count(*) as refusals by code, caller, profile
      | sort refusals desc
      | limit 50
    EOT
    "vends-by-profile-and-rule"   = <<-EOT
      filter type = "decision" and decision = "allow"
      | stats count(*) as vends, pct(latency_ms, 99) as p99_ms by profile, rule, via
      | sort vends desc
    EOT
    "dependency-failures"         = <<-EOT
      filter type = "decision" and status >= 500
      | fields @timestamp, request_id, path, code, dependency, reason, caller
      | sort @timestamp desc
      | limit 100
    EOT
    "one-session-or-caller"       = <<-EOT
      fields @timestamp, path, status, decision, caller, profile, rule, via, via_id, session_id, reason
      | filter type = "decision" and (session_id = "SESSION_ID" or caller like /CALLER/)
      | sort @timestamp desc
    EOT
  }
}
