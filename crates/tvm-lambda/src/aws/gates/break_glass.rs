//! Break-glass events: open -> closed, or expired by time.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use tvm_core::api::BreakGlassView;
use tvm_core::approval::BreakGlassStatus;

use super::{dep, event_view, open_pointer, pointer, DynamoGates, KEEP_SECONDS};
use crate::aws::attr::{n, s};
use crate::aws::{keys, AwsError, BoxFut, BreakGlassStore};

impl BreakGlassStore for DynamoGates {
    fn open<'a>(&'a self, e: &'a BreakGlassView, now: i64) -> BoxFut<'a, Result<(), AwsError>> {
        Box::pin(async move {
            let pointer_put = open_pointer(
                &self.break_glass,
                &e.caller_arn,
                &e.profile,
                ("event_id", &e.id),
                e.ends_at,
                now,
            )
            .build()
            .map_err(dep)?;
            let record = Put::builder()
                .table_name(&self.break_glass)
                .item("pk", s(&keys::break_glass_event(&e.id)))
                .item("id", s(&e.id))
                .item("profile", s(&e.profile))
                .item("caller", s(&e.caller))
                .item("caller_arn", s(&e.caller_arn))
                .item("reason", s(&e.reason))
                .item("justification", s(&e.justification))
                .item("status", s(BreakGlassStatus::Open.as_str()))
                .item("created_at", n(e.opened_at))
                .item("ends_at", n(e.ends_at))
                .item("ttl", n(e.ends_at + KEEP_SECONDS))
                // Every vend under it sets `vended` (in its own transaction).
                .item("marks_vends", AttributeValue::Bool(true))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(dep)?;
            let items = vec![
                TransactWriteItem::builder().put(pointer_put).build(),
                TransactWriteItem::builder().put(record).build(),
            ];
            if self.transact(items).await? {
                Ok(())
            } else {
                Err(AwsError::Conflict(format!(
                    "a break-glass event is already open for you on {}; close it first",
                    e.profile
                )))
            }
        })
    }
    fn get<'a>(
        &'a self,
        id: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<Option<BreakGlassView>, AwsError>> {
        Box::pin(async move {
            let item = self
                .get_item(&self.break_glass, s(&keys::break_glass_event(id)))
                .await?;
            Ok(item.and_then(|i| event_view(&i, now)))
        })
    }
    fn open_events<'a>(&'a self, now: i64) -> BoxFut<'a, Result<Vec<BreakGlassView>, AwsError>> {
        Box::pin(async move {
            let items = self
                .by_status(&self.break_glass, BreakGlassStatus::Open.as_str())
                .await?;
            Ok(items.iter().filter_map(|i| event_view(i, now)).collect())
        })
    }
    fn close<'a>(
        &'a self,
        e: &'a BreakGlassView,
        by: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<BreakGlassView, AwsError>> {
        Box::pin(async move {
            let close = Update::builder()
                .table_name(&self.break_glass)
                .key("pk", s(&keys::break_glass_event(&e.id)))
                .update_expression("SET #s = :closed, closed_by = :by, ends_at = :now")
                .condition_expression("#s = :open AND ends_at > :now")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":closed", s(BreakGlassStatus::Closed.as_str()))
                .expression_attribute_values(":open", s(BreakGlassStatus::Open.as_str()))
                .expression_attribute_values(":by", s(by))
                .expression_attribute_values(":now", n(now))
                .build()
                .map_err(dep)?;
            let pointer_key = pointer(&e.caller_arn, &e.profile);
            if !self
                .update_and_unlink(&self.break_glass, close, pointer_key, "event_id", &e.id)
                .await?
            {
                return Err(AwsError::Conflict(format!(
                    "break-glass event {} is not open",
                    e.id
                )));
            }
            BreakGlassStore::get(self, &e.id, now)
                .await?
                .ok_or_else(|| AwsError::Missing(format!("no break-glass event {}", e.id)))
        })
    }
}
