output "role_arn" {
  description = "The profile's role_arn."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "The role's name."
  value       = aws_iam_role.this.name
}

output "permissions_boundary_arn" {
  description = "The boundary the role carries."
  value       = aws_iam_role.this.permissions_boundary
}

output "revocation_policy_arn" {
  description = "The account's revocation policy, for the account's other protected roles."
  value       = local.revocation_policy_arn
}

output "revoker_role_arn" {
  description = "The revoker role this module created (null when given revocation_policy_arn)."
  value       = try(module.account[0].revoker_role_arn, null)
}
