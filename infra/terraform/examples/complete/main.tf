# tvm and one protected role, in one account. Build the package first:
#   make package   # target/lambda/bootstrap/bootstrap.zip (arm64)

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40"
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

module "tvm" {
  source           = "../../modules/tvm"
  name             = "tvm"
  lambda_zip       = "${path.root}/../../../../target/lambda/bootstrap/bootstrap.zip"
  allowed_accounts = [data.aws_caller_identity.current.account_id]
}

data "aws_caller_identity" "current" {}

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

module "orders_tenant" {
  source                = "../../modules/protected-role"
  name                  = "orders-tenant"
  tvm_function_role_arn = module.tvm.function_role_arn
  permissions_policy_json = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"]
      Resource = aws_dynamodb_table.orders.arn
    }]
  })
}

# The policy document for the profile, rendered with the role's ARN.
resource "aws_ssm_parameter" "orders_tenant" {
  #checkov:skip=CKV_AWS_337:Policy documents are not secrets; SecureString is supported when wanted.
  #checkov:skip=CKV2_AWS_34:Policy documents are not secrets; SecureString is supported when wanted.
  name = "/tvm/policies/orders-tenant"
  type = "String"
  # The example document names the local demo's account: use this one.
  value = replace(
    file("${path.root}/../../../../examples/policies/orders-tenant.yaml"),
    "123456789012",
    data.aws_caller_identity.current.account_id,
  )
}

output "endpoint" {
  description = "TVM_ENDPOINT for clients."
  value       = module.tvm.endpoint
}

output "orders_tenant_role_arn" {
  description = "The protected role of the orders-tenant profile."
  value       = module.orders_tenant.role_arn
}
