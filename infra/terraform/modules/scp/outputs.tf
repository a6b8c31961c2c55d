output "policy_id" {
  description = "The SCP's id."
  value       = aws_organizations_policy.tvm_only.id
}

output "document" {
  description = "The SCP's document, as attached."
  value       = local.content
}
