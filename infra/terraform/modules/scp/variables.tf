variable "name" {
  description = "The SCP's name."
  type        = string
  default     = "tvm-only"
}

variable "sensitive_actions" {
  description = "Actions that must go through tvm: denied in the target accounts unless the session's aws:SourceIdentity starts with tvm- (a session tvm vended, or one chained from it), e.g. [\"dynamodb:GetItem\", \"s3:GetObject\"]. At most 100 characters each, no more than the SCP's 5,120 characters in all."
  type        = list(string)
  validation {
    condition     = length(var.sensitive_actions) > 0 && alltrue([for a in var.sensitive_actions : can(regex("^[a-z0-9-]+:[A-Za-z0-9*]+$", a))])
    error_message = "sensitive_actions are IAM actions such as dynamodb:GetItem or s3:Get*, at least one."
  }
}

variable "tvm_role_arns" {
  description = "The execution roles of the tvm deployments: the only principals that may start a session with a tvm- SourceIdentity."
  type        = list(string)
  validation {
    # Exact ARNs: a wildcard here would let whoever matches it mint tvm- identities.
    condition     = length(var.tvm_role_arns) > 0 && alltrue([for a in var.tvm_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", a))])
    error_message = "tvm_role_arns are exact IAM role ARNs (no wildcard), at least one."
  }
}

variable "exempt_principal_arns" {
  description = "Principals the sensitive actions stay open to without tvm (ARN patterns, e.g. a break-glass role and the deployment pipeline). At least one: without it nobody can repair the accounts if tvm is down."
  type        = list(string)
  validation {
    condition     = length(var.exempt_principal_arns) > 0 && alltrue([for a in var.exempt_principal_arns : can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|\\*):", a))])
    error_message = "exempt_principal_arns are IAM ARN patterns (arn:aws:iam::ACCOUNT:role/NAME), at least one."
  }
}

variable "target_ids" {
  description = "Accounts, OUs or the root the SCP is attached to. (SCPs never apply to the management account.)"
  type        = list(string)
  validation {
    condition     = alltrue([for t in var.target_ids : can(regex("^([0-9]{12}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$", t))])
    error_message = "target_ids are account ids, OU ids (ou-...) or the root id (r-...)."
  }
}

variable "tags" {
  description = "Tags for the policy."
  type        = map(string)
  default     = {}
}
