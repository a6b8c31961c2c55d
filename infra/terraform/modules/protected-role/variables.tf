variable "name" {
  description = "Role name (the profile's role_arn ends with it)."
  type        = string
}

variable "path" {
  description = "IAM path; must be under the tvm module's protected_role_path."
  type        = string
  default     = "/tvm/"
  validation {
    condition     = can(regex("^/([A-Za-z0-9_+=,.@-]+/)+$", var.path))
    error_message = "path is an IAM path below the root, such as /tvm/."
  }
}

variable "tvm_function_role_arn" {
  description = "The tvm execution role (tvm module output function_role_arn): the only principal this role trusts."
  type        = string
}

variable "permissions_policy_json" {
  description = "The most any session of this role may do (the profile's session policy narrows it per caller)."
  type        = string
}

variable "permissions_boundary_arn" {
  description = "A boundary to attach; by default one is created from permissions_policy_json, so that nothing added to the role later (the revocation policy included) can grant more."
  type        = string
  default     = null
}

variable "max_session_duration" {
  description = "Upper bound of a session in seconds (tvm's role chaining caps at 3600 anyway)."
  type        = number
  default     = 3600
}

variable "tags" {
  description = "Tags for the role and its boundary."
  type        = map(string)
  default     = {}
}

variable "revocation_policy_arn" {
  description = "The account's revocation policy (output revocation_policy_arn of the account's first protected role, or of modules/tvm-account); null creates it and the revoker role here."
  type        = string
  default     = null
}

variable "revoker_role" {
  description = "Path and name of the account's revoker role, as the tvm module's revoker_role (its output of that name): used when this role creates the account's resources."
  type        = string
  default     = "/tvm/tvm-revoker"
  validation {
    condition     = can(regex("^/([A-Za-z0-9_+=,.@-]+/)*[A-Za-z0-9_+=,.@-]{1,64}$", var.revoker_role))
    error_message = "revoker_role is an IAM path and name, such as /tvm/tvm-revoker."
  }
}

variable "revocation_policy" {
  description = "Path and name of the account's revocation policy, as the tvm module's revocation_policy (its output of that name): used when this role creates the account's resources."
  type        = string
  default     = "/tvm/tvm-revocations"
  validation {
    condition     = can(regex("^/([A-Za-z0-9_+=,.@-]+/)*[A-Za-z0-9_+=,.@-]{1,64}$", var.revocation_policy))
    error_message = "revocation_policy is an IAM path and name, such as /tvm/tvm-revocations."
  }
}
