//! Session records in DynamoDB. Attribute names match `infra/tables.json`.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use tvm_core::limits::keys;

use super::{BoxFut, Gates, SessionRecord, SessionStore};
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
    fn record<'a>(
        &'a self,
        r: &'a SessionRecord,
        gates: Gates,
    ) -> BoxFut<'a, Result<(), ApiError>> {
        Box::pin(async move {
            let mut item = HashMap::from([
                ("session_id".to_string(), s(&r.session_id)),
                ("request_id".to_string(), s(&r.request_id)),
                ("caller".to_string(), s(&r.caller)),
                ("caller_arn".to_string(), s(&r.caller_arn)),
                ("account".to_string(), s(&r.account)),
                ("profile".to_string(), s(&r.profile)),
                ("role_arn".to_string(), s(&r.role_arn)),
                ("rule".to_string(), s(&r.rule)),
                ("via".to_string(), s(r.via.kind())),
                (
                    "duration_seconds".to_string(),
                    n(i64::from(r.duration_seconds)),
                ),
                ("issued_at".to_string(), n(r.issued_at.timestamp())),
                ("expires_at".to_string(), n(r.expires_at.timestamp())),
                ("source_identity".to_string(), s(&r.source_identity)),
                ("status".to_string(), s("issued")),
                ("ttl".to_string(), n(r.delete_after.timestamp())),
            ]);
            if let Some(id) = r.via.id() {
                item.insert("via_id".into(), s(id));
            }
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(session_id)")
                .build()
                .map_err(|e| ApiError::dependency(Dependency::DynamoDb, e))?;
            let not_revoked = |key: String| {
                ConditionCheck::builder()
                    .table_name(&self.table)
                    .key("session_id", AttributeValue::S(key))
                    .condition_expression("attribute_not_exists(session_id) OR #until <= :now")
                    .expression_attribute_names("#until", "until")
                    .expression_attribute_values(":now", n(gates.now))
                    .build()
                    .map_err(|e| ApiError::dependency(Dependency::DynamoDb, e))
            };
            let window = gates.rate_limit.window(gates.now);
            let count = Update::builder()
                .table_name(&self.table)
                .key(
                    "session_id",
                    s(&keys::rate(&r.caller, &r.profile, window.start)),
                )
                .update_expression("ADD #count :one SET #ttl = :ttl")
                .condition_expression("attribute_not_exists(#count) OR #count < :limit")
                .expression_attribute_names("#count", "count")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":limit", n(i64::from(gates.rate_limit.requests)))
                .expression_attribute_values(":ttl", n(window.end + 3600))
                .build()
                .map_err(|e| ApiError::dependency(Dependency::DynamoDb, e))?;
            let items = vec![
                TransactWriteItem::builder().put(put).build(),
                TransactWriteItem::builder()
                    .condition_check(not_revoked(keys::revoked_caller(&r.caller))?)
                    .build(),
                TransactWriteItem::builder()
                    .condition_check(not_revoked(keys::revoked_pair(&r.caller, &r.profile))?)
                    .build(),
                TransactWriteItem::builder().update(count).build(),
            ];
            match self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) => {
                    if let Some(TransactWriteItemsError::TransactionCanceledException(c)) =
                        e.as_service_error()
                    {
                        let failed = |i: usize| {
                            c.cancellation_reasons().get(i).and_then(|r| r.code())
                                == Some("ConditionalCheckFailed")
                        };
                        if failed(1) || failed(2) {
                            return Err(ApiError::SessionRevoked);
                        }
                        if failed(3) {
                            return Err(ApiError::RateLimited {
                                retry_after: window.retry_after(gates.now),
                            });
                        }
                    }
                    Err(ApiError::dependency(Dependency::DynamoDb, e))
                }
            }
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
