# Keys, indexes and TTL attributes follow infra/tables.json (checked by infra/tests).

resource "aws_dynamodb_table" "sessions" {
  name         = "${var.name}-sessions"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "session_id"

  attribute {
    name = "session_id"
    type = "S"
  }
  attribute {
    name = "caller"
    type = "S"
  }
  attribute {
    name = "profile"
    type = "S"
  }
  attribute {
    name = "issued_at"
    type = "N"
  }
  attribute {
    name = "revoked_on"
    type = "S"
  }
  attribute {
    name = "revoked_at"
    type = "N"
  }

  global_secondary_index {
    name            = "by-caller"
    hash_key        = "caller"
    range_key       = "issued_at"
    projection_type = "ALL"
  }
  global_secondary_index {
    name            = "by-profile"
    hash_key        = "profile"
    range_key       = "issued_at"
    projection_type = "ALL"
  }
  # Sparse: only revoked sessions carry revoked_on (their UTC day and a shard, 2026-12-02#3); tvm audit reads it.
  global_secondary_index {
    name            = "by-revocation"
    hash_key        = "revoked_on"
    range_key       = "revoked_at"
    projection_type = "ALL"
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }
  point_in_time_recovery {
    enabled = true
  }
  # Session records and revocation state outlive a destroy unless this is off.
  deletion_protection_enabled = var.table_deletion_protection
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS managed key; a customer managed key adds cost and a key policy without changing who can read the table.
  server_side_encryption {
    enabled = true
  }
  tags = var.tags
}

resource "aws_dynamodb_table" "approvals" {
  name         = "${var.name}-approvals"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "status"
    type = "S"
  }
  attribute {
    name = "created_at"
    type = "N"
  }

  global_secondary_index {
    name            = "by-status"
    hash_key        = "status"
    range_key       = "created_at"
    projection_type = "ALL"
  }
  ttl {
    attribute_name = "ttl"
    enabled        = true
  }
  point_in_time_recovery {
    enabled = true
  }
  # Session records and revocation state outlive a destroy unless this is off.
  deletion_protection_enabled = var.table_deletion_protection
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS managed key; see the sessions table.
  server_side_encryption {
    enabled = true
  }
  tags = var.tags
}

resource "aws_dynamodb_table" "breakglass" {
  name         = "${var.name}-breakglass"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "status"
    type = "S"
  }
  attribute {
    name = "created_at"
    type = "N"
  }

  global_secondary_index {
    name            = "by-status"
    hash_key        = "status"
    range_key       = "created_at"
    projection_type = "ALL"
  }
  ttl {
    attribute_name = "ttl"
    enabled        = true
  }
  point_in_time_recovery {
    enabled = true
  }
  # Session records and revocation state outlive a destroy unless this is off.
  deletion_protection_enabled = var.table_deletion_protection
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS managed key; see the sessions table.
  server_side_encryption {
    enabled = true
  }
  tags = var.tags
}
