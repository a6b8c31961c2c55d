output "revocation_policy_arn" {
  description = "Attach to every protected role and every role tvm sessions may chain into (and tag those tvm-revocable=true)."
  value       = aws_iam_policy.revocations.arn
}

output "revoker_role_arn" {
  description = "The revoker role tvm assumes to write the revocation policy."
  value       = aws_iam_role.revoker.arn
}
