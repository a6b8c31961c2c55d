//! Session records in DynamoDB. Attribute names match `infra/tables.json`.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use super::{BoxFut, SessionRecord, SessionStore};
use crate::error::{ApiError, Dependency};

pub struct DynamoSessions {
    client: Client,
    table: String,
}

impl DynamoSessions {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

impl SessionStore for DynamoSessions {
    fn record<'a>(&'a self, r: &'a SessionRecord) -> BoxFut<'a, Result<(), ApiError>> {
        Box::pin(async move {
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .condition_expression("attribute_not_exists(session_id)")
                .item("session_id", s(&r.session_id))
                .item("request_id", s(&r.request_id))
                .item("caller", s(&r.caller))
                .item("caller_arn", s(&r.caller_arn))
                .item("account", s(&r.account))
                .item("profile", s(&r.profile))
                .item("role_arn", s(&r.role_arn))
                .item("rule", s(&r.rule))
                .item("via", s(r.via.kind()))
                .item("duration_seconds", n(i64::from(r.duration_seconds)))
                .item("issued_at", n(r.issued_at.timestamp()))
                .item("expires_at", n(r.expires_at.timestamp()))
                .item("source_identity", s(&r.source_identity))
                .item("status", s("issued"))
                .item("ttl", n(r.delete_after.timestamp()));
            if let Some(id) = r.via.id() {
                put = put.item("via_id", s(id));
            }
            put.send()
                .await
                .map_err(|e| ApiError::dependency(Dependency::DynamoDb, e))?;
            Ok(())
        })
    }

    fn mark_failed<'a>(&'a self, session_id: &'a str) -> BoxFut<'a, Result<(), ApiError>> {
        Box::pin(async move {
            self.client
                .update_item()
                .table_name(&self.table)
                .key("session_id", s(session_id))
                .condition_expression("attribute_exists(session_id)")
                .update_expression("SET #s = :failed")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":failed", s("failed"))
                .send()
                .await
                .map_err(|e| ApiError::dependency(Dependency::DynamoDb, e))?;
            Ok(())
        })
    }
}
