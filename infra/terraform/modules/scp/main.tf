# A service control policy that makes chosen actions exist only through tvm:
# in the target accounts they are denied to every session whose
# aws:SourceIdentity does not start with tvm- (SourceIdentity is set once,
# by the first AssumeRole, and survives role chaining), except to the
# exempt principals and tvm's own roles. A second statement keeps the tvm-
# prefix tvm's: only its execution roles may start a session with such a
# SourceIdentity (a tvm session chaining passes its own on), so nobody else
# can mint one to pass the first. The same document as
# infra/cloudformation/tvm-scp.yaml; docs/enforcement.md explains the layers.

locals {
  document = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "SensitiveActionsOnlyThroughTvm"
        Effect   = "Deny"
        Action   = var.sensitive_actions
        Resource = "*"
        Condition = {
          StringNotLike = { "aws:SourceIdentity" = "tvm-*" }
          # tvm itself (its own tables, its own calls) and the break-glass way in.
          ArnNotLike = { "aws:PrincipalArn" = concat(var.tvm_role_arns, var.exempt_principal_arns) }
        }
      },
      {
        Sid      = "TvmSourceIdentityOnlyFromTvm"
        Effect   = "Deny"
        Action   = ["sts:AssumeRole", "sts:AssumeRoleWithSAML", "sts:AssumeRoleWithWebIdentity", "sts:SetSourceIdentity"]
        Resource = "*"
        Condition = {
          StringLike = { "sts:SourceIdentity" = "tvm-*" }
          # A session tvm vended passes its own identity on when it chains
          # (STS lets no session change it).
          StringNotLike = { "aws:SourceIdentity" = "tvm-*" }
          ArnNotLike    = { "aws:PrincipalArn" = var.tvm_role_arns }
        }
      },
    ]
  }
  content = jsonencode(local.document)
}

resource "aws_organizations_policy" "tvm_only" {
  name        = var.name
  description = "Sensitive actions only through tvm (aws:SourceIdentity tvm-*); tvm- identities only from tvm."
  type        = "SERVICE_CONTROL_POLICY"
  content     = local.content
  tags        = var.tags

  lifecycle {
    precondition {
      # AWS's limit for an SCP document (whitespace counts; jsonencode writes none).
      condition     = length(local.content) <= 5120
      error_message = "The SCP is over AWS's 5,120 characters: fewer or wildcarded sensitive_actions, fewer exempt principals."
    }
  }
}

resource "aws_organizations_policy_attachment" "targets" {
  for_each  = toset(var.target_ids)
  policy_id = aws_organizations_policy.tvm_only.id
  target_id = each.value
}
