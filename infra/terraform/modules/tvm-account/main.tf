# tvm's resources in one account: the revocation policy every protected role
# (and every role tvm sessions may chain into) attaches, and the revoker role
# tvm writes it through. One per account, tvm's own included.

# tvm owns this policy's versions from the first revocation on: Terraform
# creates it with what tvm renders when nothing is revoked, then leaves it.
resource "aws_iam_policy" "revocations" {
  name        = var.revocation_policy_name
  path        = var.revocation_policy_path
  description = "Written by tvm. Denies what tvm revoked; a tvm session may chain only into roles tagged tvm-revocable=true."
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "ChainOnlyIntoRevocableRoles"
      Effect    = "Deny"
      Action    = "sts:AssumeRole"
      Resource  = "*"
      Condition = { StringNotEquals = { "aws:ResourceTag/tvm-revocable" = "true" } }
    }]
  })
  tags = var.tags

  lifecycle {
    ignore_changes = [policy]
  }
}

# Trusts only tvm's execution role; may only write the revocation policy.
resource "aws_iam_role" "revoker" {
  name                 = var.revoker_role_name
  path                 = var.revoker_role_path
  description          = "tvm writes the revocation policy through this role, and nothing else."
  max_session_duration = 3600
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "OnlyTvm"
      Effect    = "Allow"
      Principal = { AWS = var.tvm_function_role_arn }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy" "revoker" {
  name = "revocation-policy-only"
  role = aws_iam_role.revoker.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "WriteTheRevocationPolicy"
      Effect   = "Allow"
      Action   = ["iam:ListPolicyVersions", "iam:CreatePolicyVersion", "iam:DeletePolicyVersion"]
      Resource = aws_iam_policy.revocations.arn
    }]
  })
}
