variable "name" {
  description = "Name prefix for every resource (function, tables, API, role)."
  type        = string
  default     = "tvm"
}

variable "lambda_zip" {
  description = "Path of the function package: `make package` writes target/lambda/bootstrap/bootstrap.zip (arm64)."
  type        = string
}

variable "policy_prefix" {
  description = "SSM path of the policy documents, one parameter per profile (TVM_POLICY_PREFIX)."
  type        = string
  default     = "/tvm/policies/"
  validation {
    condition     = can(regex("^/.*/$", var.policy_prefix))
    error_message = "policy_prefix must start and end with '/'."
  }
}

variable "protected_role_path" {
  description = "IAM path of the roles tvm may assume; they must also carry the tag tvm-protected = true."
  type        = string
  default     = "/tvm/"
}

variable "allowed_accounts" {
  description = "Accounts whose callers may be evaluated at all (TVM_ALLOWED_ACCOUNTS); empty for the deploying account only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.allowed_accounts : can(regex("^[0-9]{12}$", a))])
    error_message = "allowed_accounts are 12-digit account ids."
  }
}

variable "allowed_org_ids" {
  description = "AWS Organizations whose callers may be evaluated at all (TVM_ALLOWED_ORG_IDS); empty for any."
  type        = list(string)
  default     = []
}

variable "log_level" {
  description = "RUST_LOG for the function."
  type        = string
  default     = "info"
}

variable "log_retention_days" {
  description = "Retention of the function and API access logs."
  type        = number
  default     = 365
}

variable "enable_notifications" {
  description = "Create an SNS topic for approval, break-glass and revocation events (TVM_NOTIFY_TOPIC_ARN)."
  type        = bool
  default     = true
}

variable "memory_size" {
  description = "Function memory in MB."
  type        = number
  default     = 128
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "revoker_role" {
  description = "Path and name of the revoker role in every account (modules/tvm-account creates it): TVM_REVOKER_ROLE."
  type        = string
  default     = "/tvm/tvm-revoker"
  validation {
    condition     = can(regex("^/([A-Za-z0-9_+=,.@-]+/)*[A-Za-z0-9_+=,.@-]{1,64}$", var.revoker_role))
    error_message = "revoker_role is an IAM path and name, such as /tvm/tvm-revoker."
  }
}

variable "revocation_policy" {
  description = "Path and name of the customer-managed revocation policy in every account: TVM_REVOCATION_POLICY."
  type        = string
  default     = "/tvm/tvm-revocations"
  validation {
    condition     = can(regex("^/([A-Za-z0-9_+=,.@-]+/)*[A-Za-z0-9_+=,.@-]{1,128}$", var.revocation_policy))
    error_message = "revocation_policy is an IAM path and name, such as /tvm/tvm-revocations."
  }
}

variable "revocation_accounts" {
  description = "Accounts every revocation is also written to besides those of the profiles' roles (where chained sessions may land): TVM_REVOCATION_ACCOUNTS."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for a in var.revocation_accounts : can(regex("^[0-9]{12}$", a))])
    error_message = "revocation_accounts are 12-digit account ids."
  }
}
