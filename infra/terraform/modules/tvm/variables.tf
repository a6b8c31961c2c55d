variable "name" {
  description = "Name prefix for every resource (function, tables, API, role)."
  type        = string
  default     = "tvm"
}

variable "lambda_zip" {
  description = "Path of the function package (arm64): `make package` writes target/lambda/bootstrap/bootstrap.zip; a release's tvm-lambda-arm64.zip works too."
  type        = string
}

variable "policy_prefix" {
  description = "SSM path of the policy documents, one parameter per profile (TVM_POLICY_PREFIX)."
  type        = string
  default     = "/tvm/policies/"
  validation {
    condition     = can(regex("^(/[A-Za-z0-9_.-]+)+/$", var.policy_prefix))
    error_message = "policy_prefix is a path below the root that starts and ends with '/', such as /tvm/policies/."
  }
}

variable "protected_role_path" {
  description = "IAM path of the roles tvm may assume; they must also carry the tag tvm-protected = true."
  type        = string
  default     = "/tvm/"
  validation {
    condition     = can(regex("^/([A-Za-z0-9_+=,.@-]+/)+$", var.protected_role_path))
    error_message = "protected_role_path is an IAM path below the root, such as /tvm/ (\"/\" would let tvm assume any tagged role)."
  }
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
  validation {
    condition     = alltrue([for o in var.allowed_org_ids : can(regex("^o-[a-z0-9]{10,32}$", o))])
    error_message = "allowed_org_ids are organization ids, such as o-a1b2c3d4e5."
  }
}

variable "log_level" {
  description = "RUST_LOG for the function."
  type        = string
  default     = "info"
  validation {
    condition     = contains(["error", "warn", "info", "debug"], var.log_level)
    error_message = "log_level is error, warn, info or debug."
  }
}

variable "log_retention_days" {
  description = "Retention of the function and API access logs."
  type        = number
  default     = 365
  validation {
    condition     = contains([30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 3653], var.log_retention_days)
    error_message = "log_retention_days is one of CloudWatch Logs' values: 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 3653."
  }
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
  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size is in 128..10240 MB."
  }
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
    condition     = can(regex("^/([A-Za-z0-9_+=,.@-]+/)*[A-Za-z0-9_+=,.@-]{1,64}$", var.revocation_policy))
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

variable "admin_principals" {
  description = "ARN globs of the security team (TVM_ADMIN_PRINCIPALS), each naming its account: they list and revoke any session and revoke callers. Empty: nobody."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for p in var.admin_principals : can(regex("^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:[A-Za-z0-9_+=.@:/*?-]+$", p))])
    error_message = "admin_principals are ARN globs naming their 12-digit account, without commas, such as arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_SecAdmin_*/*."
  }
}

variable "identity_modes" {
  description = "Identity sources (TVM_IDENTITY_MODES): apigw (API Gateway's IAM authorization, and an HTTP API JWT authorizer's claims), sts (a presigned GetCallerIdentity in X-Tvm-Identity, for a function URL or a front without IAM auth; needs server_id), jwt (Authorization Bearer tokens of jwt_issuers, verified by tvm; needs jwt_issuers and jwt_audiences)."
  type        = list(string)
  default     = ["apigw"]
  validation {
    condition     = length(var.identity_modes) > 0 && alltrue([for m in var.identity_modes : contains(["apigw", "sts", "jwt"], m)])
    error_message = "identity_modes are apigw, sts and/or jwt."
  }
}

variable "jwt_issuers" {
  description = "OIDC issuers whose tokens name callers (TVM_JWT_ISSUERS), exactly as their tokens' iss: https (http only to loopback). For the jwt mode and an HTTP API JWT authorizer alike."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for i in var.jwt_issuers : can(regex("^(https://[!-+--?A-~]+|http://(127\\.0\\.0\\.1|localhost)([:/][!-+--?A-~]*)?)$", i)) && length(i) <= 256 && !strcontains(i, "?") && !strcontains(i, "#")])
    error_message = "jwt_issuers are https:// URLs without query or fragment, at most 256 characters (http:// only to 127.0.0.1 or localhost)."
  }
}

variable "jwt_audiences" {
  description = "Audiences (client ids) a token must be for (TVM_JWT_AUDIENCES); required by the jwt mode."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for a in var.jwt_audiences : can(regex("^[!-+--~]{1,256}$", a))])
    error_message = "jwt_audiences are 1-256 printable characters without spaces or commas."
  }
}

variable "jwks_max_age_seconds" {
  description = "How old an issuer's keys may be and still verify tokens while every refresh fails (TVM_JWKS_MAX_AGE_SECONDS); then tokens are refused (503)."
  type        = number
  default     = 3600
  validation {
    condition     = var.jwks_max_age_seconds >= 2 && var.jwks_max_age_seconds <= 86400 && floor(var.jwks_max_age_seconds) == var.jwks_max_age_seconds
    error_message = "jwks_max_age_seconds is a whole number of seconds between 2 and 86400."
  }
}

variable "policy_signing_key" {
  description = "The ARN of the KMS asymmetric key (ECC_NIST_P256 or RSA, SIGN_VERIFY) that signs policy documents (TVM_POLICY_SIGNING_KEY; tvm policy sign): every document must then carry a signature that verifies, or it is refused. Empty: documents are not verified."
  type        = string
  default     = ""
  validation {
    condition     = can(regex("^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+)?$", var.policy_signing_key))
    error_message = "policy_signing_key is a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), or empty."
  }
}

variable "ca_bundle" {
  description = "Absolute path, inside the function (a layer's files are under /opt), of a PEM file of CA certificates to trust besides the compiled-in roots (TVM_CA_BUNDLE; Amazon Trust Services for AWS endpoints, Mozilla for OIDC issuers), for a TLS-inspecting egress proxy or an OIDC issuer behind a private CA. Empty: the compiled-in roots only; the system's store is not read."
  type        = string
  default     = ""
  validation {
    condition     = can(regex("^(/[A-Za-z0-9._/-]{1,255})?$", var.ca_bundle))
    error_message = "ca_bundle is an absolute path such as /opt/ca.pem, or empty."
  }
}

variable "server_id" {
  description = "The x-tvm-server-id a presigned identity must be signed with (TVM_SERVER_ID); required by the sts identity mode, 8-128 characters."
  type        = string
  default     = ""
  validation {
    condition     = can(regex("^([A-Za-z0-9._-]{8,128})?$", var.server_id))
    error_message = "server_id is empty or 8-128 letters, digits, '.', '_' or '-'."
  }
}

variable "rate_limit" {
  description = "Vends per caller and profile, REQUESTS/SECONDS, for profiles without their own limit (TVM_RATE_LIMIT)."
  type        = string
  default     = "60/60"
  validation {
    condition     = can(regex("^([1-9][0-9]{0,4}|100000)/([1-9][0-9]{0,3}|[1-7][0-9]{4}|8[0-5][0-9]{3}|86[0-3][0-9]{2}|86400)$", var.rate_limit))
    error_message = "rate_limit is REQUESTS/SECONDS, such as 60/60."
  }
}

variable "policy_ttl_seconds" {
  description = "How old the in-memory policy set may get before a background refresh (TVM_POLICY_TTL_SECONDS)."
  type        = number
  default     = 30
  validation {
    condition     = var.policy_ttl_seconds >= 1 && var.policy_ttl_seconds <= 3600 && floor(var.policy_ttl_seconds) == var.policy_ttl_seconds
    error_message = "policy_ttl_seconds is a whole number in 1..3600."
  }
}

variable "policy_max_stale_seconds" {
  description = "After this long without a successful refresh the function fails closed (TVM_POLICY_MAX_STALE_SECONDS); null: the code's default, max(300, 2 x policy_ttl_seconds)."
  type        = number
  default     = null
  validation {
    condition     = var.policy_max_stale_seconds == null ? true : (var.policy_max_stale_seconds >= 2 && var.policy_max_stale_seconds <= 86400 && floor(var.policy_max_stale_seconds) == var.policy_max_stale_seconds)
    error_message = "policy_max_stale_seconds is null or a whole number in 2..86400."
  }
}

variable "aws_timeout_ms" {
  description = "Upper bound of one AWS operation, retries included (TVM_AWS_TIMEOUT_MS). Keep timeout above a few of them."
  type        = number
  default     = 3000
  validation {
    condition     = var.aws_timeout_ms >= 100 && var.aws_timeout_ms <= 30000 && floor(var.aws_timeout_ms) == var.aws_timeout_ms
    error_message = "aws_timeout_ms is a whole number in 100..30000."
  }
}

variable "timeout" {
  description = "Function timeout in seconds."
  type        = number
  default     = 10
  validation {
    condition     = var.timeout >= 3 && var.timeout <= 900
    error_message = "timeout is in 3..900 seconds."
  }
}

variable "tracing" {
  description = "AWS X-Ray tracing of the function: Active (adds the X-Ray write permission) or PassThrough."
  type        = string
  default     = "PassThrough"
  validation {
    condition     = contains(["Active", "PassThrough"], var.tracing)
    error_message = "tracing is Active or PassThrough."
  }
}

variable "table_deletion_protection" {
  description = "DynamoDB deletion protection on the three tables: terraform destroy cannot delete session records and revocation state while it is on."
  type        = bool
  default     = true
}

variable "alarm_email" {
  description = "An email address subscribed to the alarm topic (confirm the subscription mail); empty for none."
  type        = string
  default     = ""
}

variable "notification_email" {
  description = "An email address subscribed to the notification topic (approvals, break-glass, revocations); empty for none."
  type        = string
  default     = ""
}

variable "notification_https_url" {
  description = "An HTTPS endpoint subscribed to the notification topic; empty for none."
  type        = string
  default     = ""
  validation {
    condition     = can(regex("^(https://\\S+)?$", var.notification_https_url))
    error_message = "notification_https_url is empty or an https:// URL."
  }
}

variable "policies" {
  description = "Policy documents by profile name, stored under policy_prefix (for example { orders-tenant = file(\"policies/orders-tenant.yaml\") }). Empty: manage the parameters yourself (tvm policy push)."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for name in keys(var.policies) : can(regex("^[A-Za-z0-9_.-]{1,64}$", name))])
    error_message = "policies are keyed by profile name: 1-64 letters, digits, '-', '_' or '.'."
  }
}

variable "saved_queries" {
  description = "Save the Logs Insights queries over the decision log (docs/operations.md). The moto emulator has no PutQueryDefinition: make test turns them off there."
  type        = bool
  default     = true
}

variable "cors_origins" {
  description = "Browser origins allowed to call tvm (TVM_CORS_ORIGINS), exact origins such as https://app.example.com; empty: no CORS. Sets the HTTP API's CORS configuration too."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for o in var.cors_origins : can(regex("^(https://[a-z0-9.-]+|http://(127\\.0\\.0\\.1|localhost))(:[0-9]{1,5})?$", o))])
    error_message = "cors_origins are exact origins: https://host[:port] (http:// only to 127.0.0.1 or localhost), lower case, no path, no wildcard."
  }
}
