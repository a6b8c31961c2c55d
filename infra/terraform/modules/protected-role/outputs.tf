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
