data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id
}

resource "aws_sns_topic" "notify" {
  count             = var.enable_notifications ? 1 : 0
  name              = "${var.name}-events"
  kms_master_key_id = "alias/aws/sns"
  tags              = var.tags
}

resource "aws_cloudwatch_log_group" "function" {
  #checkov:skip=CKV_AWS_158:Log lines carry no secrets by design (tested); CloudWatch Logs encrypts at rest with its own key.
  #checkov:skip=CKV_AWS_338:Retention is the caller's choice (log_retention_days).
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_iam_role" "function" {
  name = "${var.name}-function"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = var.tags
}

# Least privilege: assume only protected roles and revoker roles, read only
# the policy prefix, write only tvm's tables, publish only to tvm's topic. No
# IAM action at all: revocation policies are written through each account's
# revoker role, which may write nothing else.
resource "aws_iam_role_policy" "function" {
  name = "tvm"
  role = aws_iam_role.function.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      {
        Sid      = "Logs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = "${aws_cloudwatch_log_group.function.arn}:*"
      },
      {
        Sid       = "AssumeProtectedRoles"
        Effect    = "Allow"
        Action    = ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]
        Resource  = "arn:${local.partition}:iam::*:role${var.protected_role_path}*"
        Condition = { StringEquals = { "aws:ResourceTag/tvm-protected" = "true" } }
      },
      {
        Sid      = "ReadPolicies"
        Effect   = "Allow"
        Action   = "ssm:GetParametersByPath"
        Resource = "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter${var.policy_prefix}"
      },
      {
        Sid       = "DecryptSecureStringPolicies"
        Effect    = "Allow"
        Action    = "kms:Decrypt"
        Resource  = "arn:${local.partition}:kms:${local.region}:${local.account_id}:key/*"
        Condition = { StringEquals = { "kms:ViaService" = "ssm.${local.region}.amazonaws.com" } }
      },
      # Exactly the actions the code calls, on the resources it calls them
      # on (crates/tvm-lambda/tests/it/least_privilege.rs; SAM's are the same).
      {
        Sid      = "SessionItems"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"]
        Resource = aws_dynamodb_table.sessions.arn
      },
      {
        Sid    = "GateItems"
        Effect = "Allow"
        Action = [
          "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
          "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem",
        ]
        Resource = [aws_dynamodb_table.approvals.arn, aws_dynamodb_table.breakglass.arn]
      },
      {
        Sid      = "Listings"
        Effect   = "Allow"
        Action   = "dynamodb:Query"
        Resource = [for t in [aws_dynamodb_table.sessions, aws_dynamodb_table.approvals, aws_dynamodb_table.breakglass] : "${t.arn}/index/*"]
      },
      {
        Sid      = "AssumeRevokers"
        Effect   = "Allow"
        Action   = "sts:AssumeRole"
        Resource = "arn:${local.partition}:iam::*:role${var.revoker_role}"
      },
      ], var.enable_notifications ? [{
        Sid      = "Notify"
        Effect   = "Allow"
        Action   = "sns:Publish"
        Resource = aws_sns_topic.notify[0].arn
        }] : [], var.tracing == "Active" ? [{
        # X-Ray takes no resource-level permissions.
        Sid      = "Tracing"
        Effect   = "Allow"
        Action   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
        Resource = "*"
        }] : [], var.policy_signing_key != "" ? [{
        # The public half, once per cold start (signed policies).
        Sid      = "ReadPolicySigningKey"
        Effect   = "Allow"
        Action   = "kms:GetPublicKey"
        Resource = var.policy_signing_key
    }] : [])
  })
}

resource "aws_lambda_function" "tvm" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously by API Gateway; a dead-letter queue only applies to asynchronous invocations.
  #checkov:skip=CKV_AWS_117:Calls only public AWS endpoints; a VPC would add NAT cost and a failure mode, no isolation.
  #checkov:skip=CKV_AWS_115:Concurrency is bounded by API Gateway throttling and tvm's per-caller rate limits.
  #checkov:skip=CKV_AWS_173:The environment holds names and settings only, no secrets.
  #checkov:skip=CKV_AWS_50:X-Ray tracing is the tracing variable's choice; the decision log line carries the request id.
  #checkov:skip=CKV_AWS_272:Code signing is the deployer's choice; the package is built from this repository by make package.
  function_name    = var.name
  role             = aws_iam_role.function.arn
  filename         = var.lambda_zip
  source_code_hash = filebase64sha256(var.lambda_zip)
  handler          = "bootstrap"
  runtime          = "provided.al2023"
  architectures    = ["arm64"]
  memory_size      = var.memory_size
  timeout          = var.timeout
  # Every apply of new code publishes a version; the API invokes the alias.
  publish = true

  tracing_config {
    mode = var.tracing
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function.name
  }

  environment {
    variables = {
      TVM_POLICY_PREFIX    = var.policy_prefix
      TVM_SESSIONS_TABLE   = aws_dynamodb_table.sessions.name
      TVM_APPROVALS_TABLE  = aws_dynamodb_table.approvals.name
      TVM_BREAKGLASS_TABLE = aws_dynamodb_table.breakglass.name
      TVM_NOTIFY_TOPIC_ARN = var.enable_notifications ? aws_sns_topic.notify[0].arn : ""
      TVM_IDENTITY_MODES   = join(",", var.identity_modes)
      TVM_SERVER_ID        = var.server_id
      TVM_ADMIN_PRINCIPALS = join(",", var.admin_principals)
      TVM_RATE_LIMIT       = var.rate_limit
      # Numbers as the environment carries them; null = the code's default.
      TVM_POLICY_TTL_SECONDS       = tostring(var.policy_ttl_seconds)
      TVM_POLICY_MAX_STALE_SECONDS = var.policy_max_stale_seconds == null ? "" : tostring(var.policy_max_stale_seconds)
      TVM_AWS_TIMEOUT_MS           = tostring(var.aws_timeout_ms)
      TVM_CORS_ORIGINS             = join(",", var.cors_origins)
      TVM_JWT_ISSUERS              = join(",", var.jwt_issuers)
      TVM_JWT_AUDIENCES            = join(",", var.jwt_audiences)
      TVM_JWKS_MAX_AGE_SECONDS     = tostring(var.jwks_max_age_seconds)
      TVM_POLICY_SIGNING_KEY       = var.policy_signing_key
      TVM_CA_BUNDLE                = var.ca_bundle
      # Never "any account": the deploying account unless told otherwise.
      TVM_ALLOWED_ACCOUNTS    = length(var.allowed_accounts) > 0 ? join(",", var.allowed_accounts) : local.account_id
      TVM_ALLOWED_ORG_IDS     = join(",", var.allowed_org_ids)
      TVM_REVOKER_ROLE        = var.revoker_role
      TVM_REVOCATION_POLICY   = var.revocation_policy
      TVM_REVOCATION_ACCOUNTS = join(",", var.revocation_accounts)
      RUST_LOG                = var.log_level
    }
  }
  tags = var.tags

  lifecycle {
    precondition {
      condition     = !contains(var.identity_modes, "sts") || length(var.server_id) >= 8
      error_message = "The sts identity mode needs server_id (at least 8 characters)."
    }
    precondition {
      condition     = !contains(var.identity_modes, "jwt") || (length(var.jwt_issuers) > 0 && length(var.jwt_audiences) > 0)
      error_message = "The jwt identity mode needs jwt_issuers and jwt_audiences (an issuer's tokens for other applications would be callers otherwise)."
    }
    precondition {
      condition     = var.enable_notifications || (var.notification_email == "" && var.notification_https_url == "")
      error_message = "notification_email and notification_https_url subscribe to the notification topic, which enable_notifications = false does not create."
    }
  }
}

# The version the API invokes: a rollback points it back.
resource "aws_lambda_alias" "live" {
  name             = "live"
  function_name    = aws_lambda_function.tvm.function_name
  function_version = aws_lambda_function.tvm.version
}

# Policy documents given as input, one parameter per profile.
resource "aws_ssm_parameter" "policy" {
  #checkov:skip=CKV_AWS_337:Policy documents are not secrets; SecureString parameters you manage yourself are read too.
  #checkov:skip=CKV2_AWS_34:Policy documents are not secrets; SecureString parameters you manage yourself are read too.
  for_each = var.policies
  name     = "${var.policy_prefix}${each.key}"
  type     = "String"
  tier     = length(each.value) > 4096 ? "Advanced" : "Standard"
  value    = each.value
  tags     = var.tags
}
