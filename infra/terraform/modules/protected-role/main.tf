# A role only tvm can assume, only with its SourceIdentity, only within its
# boundary, with the revocation policy tvm maintains.

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
        StringLike = { "sts:SourceIdentity" = "${var.source_identity_prefix}*" }
      }
    }]
  })

  # The tvm execution role may assume and keep the revocation policy of
  # roles with this tag (and under its protected path) only.
  tags = merge(var.tags, { "tvm-protected" = "true" })
}

resource "aws_iam_role_policy" "permissions" {
  name   = "permissions"
  role   = aws_iam_role.this.id
  policy = var.permissions_policy_json
}

# tvm rewrites this policy to deny every session it revokes (by
# aws:SourceIdentity). Terraform creates it and then leaves it to tvm.
resource "aws_iam_role_policy" "revocations" {
  name = "tvm-revocations"
  role = aws_iam_role.this.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "RevokedSessions"
      Effect    = "Deny"
      Action    = "*"
      Resource  = "*"
      Condition = { StringEquals = { "aws:SourceIdentity" = ["${var.source_identity_prefix}revoked-none"] } }
    }]
  })

  lifecycle {
    ignore_changes = [policy]
  }
}
