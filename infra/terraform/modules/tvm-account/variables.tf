variable "tvm_function_role_arn" {
  description = "The tvm execution role (tvm module output function_role_arn): the only principal the revoker trusts."
  type        = string
}

variable "revoker_role_path" {
  description = "Path of the revoker role; with its name, the function's TVM_REVOKER_ROLE (tvm module variable revoker_role)."
  type        = string
  default     = "/tvm/"
}

variable "revoker_role_name" {
  description = "Name of the revoker role."
  type        = string
  default     = "tvm-revoker"
}

variable "revocation_policy_path" {
  description = "Path of the revocation policy; with its name, the function's TVM_REVOCATION_POLICY (tvm module variable revocation_policy)."
  type        = string
  default     = "/tvm/"
}

variable "revocation_policy_name" {
  description = "Name of the revocation policy."
  type        = string
  default     = "tvm-revocations"
}

variable "tags" {
  description = "Tags for the policy and the revoker role."
  type        = map(string)
  default     = {}
}
