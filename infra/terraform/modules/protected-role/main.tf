# A role only tvm can assume, only with its SourceIdentity, only within its
# boundary, carrying the revocation policy tvm maintains. The first protected
# role of an account also creates that account's revocation policy and
# revoker role (modules/tvm-account); pass revocation_policy_arn to the others.

module "account" {
  source                 = "../tvm-account"
  count                  = var.revocation_policy_arn == null ? 1 : 0
  tvm_function_role_arn  = var.tvm_function_role_arn
  revoker_role_path      = regex("^(.*/)[^/]+$", var.revoker_role)[0]
  revoker_role_name      = regex("[^/]+$", var.revoker_role)
  revocation_policy_path = regex("^(.*/)[^/]+$", var.revocation_policy)[0]
  revocation_policy_name = regex("[^/]+$", var.revocation_policy)
  tags                   = var.tags
}

locals {
  revocation_policy_arn = coalesce(var.revocation_policy_arn, try(module.account[0].revocation_policy_arn, null))
}

resource "aws_iam_policy" "boundary" {
  count       = var.permissions_boundary_arn == null ? 1 : 0
  name        = "${var.name}-boundary"
  path        = var.path
  description = "Permissions boundary of ${var.name}: what tvm adds to the role can only subtract."
  policy      = var.permissions_policy_json
  tags        = var.tags
}

resource "aws_iam_role" "this" {
  name                 = var.name
  path                 = var.path
  max_session_duration = var.max_session_duration
  permissions_boundary = coalesce(var.permissions_boundary_arn, try(aws_iam_policy.boundary[0].arn, null))

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "OnlyTvm"
      Effect    = "Allow"
      Principal = { AWS = var.tvm_function_role_arn }
      Action    = ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]
      Condition = {
        # tvm stamps every session tvm-<session id> (render.rs; not a setting).
        StringLike = { "sts:SourceIdentity" = "tvm-*" }
      }
    }]
  })

  # The tvm execution role may assume roles with this tag (and under its
  # protected path) only; tvm sessions may chain only into roles that carry
  # the revocation policy (tvm-revocable).
  tags = merge(var.tags, { "tvm-protected" = "true", "tvm-revocable" = "true" })
}

resource "aws_iam_role_policy" "permissions" {
  name   = "permissions"
  role   = aws_iam_role.this.id
  policy = var.permissions_policy_json
}

# What tvm revoked, denied: one customer-managed policy per account.
resource "aws_iam_role_policy_attachment" "revocations" {
  role       = aws_iam_role.this.name
  policy_arn = local.revocation_policy_arn
}
