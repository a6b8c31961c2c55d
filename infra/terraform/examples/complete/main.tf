# tvm, one protected role, and one caller, in one account.
#
#   make package     # target/lambda/bootstrap/bootstrap.zip (arm64), or a release's zip
#   terraform init
#   terraform apply -var lambda_zip=../../../../target/lambda/bootstrap/bootstrap.zip \
#                   -var policies_dir=../../../../examples/policies
#
# Outside this repository, take the modules from git (or a registry mirror of
# them) and pass your own artifact and policy documents:
#   source = "git::https://github.com/YOUR-ORG/tvm.git//infra/terraform/modules/tvm?ref=v0.1.0"
# make test applies this example against the moto emulator and vends through it.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  description = "Region to deploy tvm in."
  type        = string
  default     = "eu-west-1"
}

variable "lambda_zip" {
  description = "The function package (arm64): make package writes target/lambda/bootstrap/bootstrap.zip."
  type        = string
}

variable "policies_dir" {
  description = "A directory of policy documents (PROFILE.yaml); the repository's examples/policies name the demo account 123456789012, replaced by this one."
  type        = string
}

variable "table_deletion_protection" {
  description = "Deletion protection on tvm's tables (turn off only to destroy a test deployment)."
  type        = bool
  default     = true
}

variable "saved_queries" {
  description = "Save tvm's Logs Insights queries (off only where the API is missing: the moto emulator)."
  type        = bool
  default     = true
}

variable "admin_principals" {
  description = "ARN globs of the security team (TVM_ADMIN_PRINCIPALS)."
  type        = list(string)
  default     = []
}

data "aws_caller_identity" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  policies = {
    for f in fileset(var.policies_dir, "*.yaml") :
    trimsuffix(f, ".yaml") => replace(file("${var.policies_dir}/${f}"), "123456789012", local.account_id)
  }
}

module "tvm" {
  source                    = "../../modules/tvm"
  name                      = "tvm"
  lambda_zip                = var.lambda_zip
  policies                  = local.policies
  allowed_accounts          = [local.account_id]
  admin_principals          = var.admin_principals
  table_deletion_protection = var.table_deletion_protection
  saved_queries             = var.saved_queries
}

resource "aws_dynamodb_table" "orders" {
  #checkov:skip=CKV_AWS_119:Example table; encrypted with the AWS managed key.
  name         = "orders"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "tenant"
  range_key    = "order_id"
  attribute {
    name = "tenant"
    type = "S"
  }
  attribute {
    name = "order_id"
    type = "S"
  }
  point_in_time_recovery {
    enabled = true
  }
  server_side_encryption {
    enabled = true
  }
}

# The role of the orders-tenant profile: only tvm assumes it.
module "orders_tenant" {
  source                = "../../modules/protected-role"
  name                  = "orders-tenant"
  tvm_function_role_arn = module.tvm.function_role_arn
  revoker_role          = module.tvm.revoker_role
  revocation_policy     = module.tvm.revocation_policy
  permissions_policy_json = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"]
      Resource = aws_dynamodb_table.orders.arn
    }]
  })
}

# A caller: the orders service's ECS task role, allowed to call tvm (the
# profile's rule ecs-orders names it).
resource "aws_iam_role" "orders_task" {
  name = "orders-task"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ecs-tasks.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "orders_task_calls_tvm" {
  name = "call-tvm"
  role = aws_iam_role.orders_task.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect = "Allow"
      Action = "execute-api:Invoke"
      Resource = [
        "${module.tvm.api_execution_arn}/*/POST/v1/credentials",
        "${module.tvm.api_execution_arn}/*/GET/v1/profiles",
      ]
    }]
  })
}

output "endpoint" {
  description = "TVM_ENDPOINT for clients."
  value       = module.tvm.endpoint
}

output "orders_tenant_role_arn" {
  description = "The protected role of the orders-tenant profile."
  value       = module.orders_tenant.role_arn
}

output "caller_role_arn" {
  description = "The example caller (ECS task role)."
  value       = aws_iam_role.orders_task.arn
}

output "function_role_arn" {
  description = "Trusted by protected roles in other accounts (modules/protected-role)."
  value       = module.tvm.function_role_arn
}

output "function_environment" {
  description = "The function's environment as deployed."
  value       = module.tvm.function_environment
}

output "tables" {
  description = "tvm's table names."
  value       = module.tvm.tables
}

output "alarm_topic_arn" {
  description = "Where the alarms go."
  value       = module.tvm.alarm_topic_arn
}

output "notify_topic_arn" {
  description = "The notification topic (approvals, break-glass, revocations)."
  value       = module.tvm.notify_topic_arn
}
