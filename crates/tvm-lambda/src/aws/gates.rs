//! Approvals and break-glass in DynamoDB.
//!
//! Each table holds the records (`req#<id>`, `event#<id>`) and, per caller
//! and profile, one pointer (`open#<caller>#<profile>`) to the request or
//! event that currently matters. The vend path reads both pointers in one
//! BatchGetItem; every state change is a conditional write, so transitions
//! are one-way and racing approvers are each counted exactly once.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, ReturnValue, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use tvm_core::api::{BreakGlassView, RequestView};
use tvm_core::decision::{ActiveBreakGlass, ApprovedRequest, GateState};

use super::attr::{n, s};
use super::BoxFut;
use crate::error::{ApiError, Dependency};

/// Where approval requests and break-glass events live.
pub trait GateStore: Send + Sync {
    /// The approval and break-glass state of a caller for a profile (one read).
    fn state<'a>(
        &'a self,
        caller: &'a str,
        profile: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<GateState, ApiError>>;
    /// Create a pending request unless one is pending or approved for this
    /// caller and profile; either way, the id that matters.
    fn open_request<'a>(
        &'a self,
        r: &'a RequestView,
        now: i64,
    ) -> BoxFut<'a, Result<String, ApiError>>;
    fn request<'a>(
        &'a self,
        id: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<Option<RequestView>, ApiError>>;
    fn requests<'a>(
        &'a self,
        status: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<Vec<RequestView>, ApiError>>;
    /// Count one approving principal; approve once `required` are counted.
    fn approve<'a>(
        &'a self,
        r: &'a RequestView,
        approver: &'a str,
        ttl: u32,
        now: i64,
    ) -> BoxFut<'a, Result<RequestView, ApiError>>;
    /// pending -> `denied` or `cancelled`.
    fn finish<'a>(
        &'a self,
        r: &'a RequestView,
        status: &'a str,
        by: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<RequestView, ApiError>>;
    fn open_break_glass<'a>(
        &'a self,
        e: &'a BreakGlassView,
        now: i64,
    ) -> BoxFut<'a, Result<(), ApiError>>;
    fn break_glass<'a>(
        &'a self,
        id: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<Option<BreakGlassView>, ApiError>>;
    fn open_break_glass_events<'a>(
        &'a self,
        now: i64,
    ) -> BoxFut<'a, Result<Vec<BreakGlassView>, ApiError>>;
    fn close_break_glass<'a>(
        &'a self,
        e: &'a BreakGlassView,
        by: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<BreakGlassView, ApiError>>;
}

pub struct DynamoGates {
    client: Client,
    approvals: String,
    breakglass: String,
}

impl DynamoGates {
    pub fn new(client: Client, approvals: String, breakglass: String) -> Self {
        Self {
            client,
            approvals,
            breakglass,
        }
    }
}

/// How long a request stays pending.
pub const PENDING_SECONDS: i64 = 86_400;
/// How long records are kept after they stop mattering.
const KEEP_SECONDS: i64 = 90 * 86_400;

fn pointer(caller: &str, profile: &str) -> AttributeValue {
    s(&format!("open#{caller}#{profile}"))
}
fn dep<E: std::error::Error + Send + Sync + 'static>(e: E) -> ApiError {
    ApiError::dependency(Dependency::DynamoDb, e)
}
fn conflict(message: String) -> ApiError {
    ApiError::BadRequest(message)
}

type Item = HashMap<String, AttributeValue>;

fn text(item: &Item, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}
fn num(item: &Item, k: &str) -> Option<i64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn request_view(item: &Item, now: i64) -> Option<RequestView> {
    let mut status = text(item, "status")?;
    let expires_at = num(item, "expires_at")?;
    if matches!(status.as_str(), "pending" | "approved") && expires_at <= now {
        status = "expired".into();
    }
    let mut approvals: Vec<String> = item
        .get("approvals")
        .and_then(|v| v.as_ss().ok())
        .cloned()
        .unwrap_or_default();
    approvals.sort();
    Some(RequestView {
        id: text(item, "id")?,
        profile: text(item, "profile")?,
        caller: text(item, "caller")?,
        caller_arn: text(item, "caller_arn")?,
        justification: text(item, "justification").unwrap_or_default(),
        duration_seconds: num(item, "duration_seconds")? as u32,
        status,
        created_at: num(item, "created_at")?,
        expires_at,
        required: num(item, "required")? as u32,
        approvals,
        valid_until: num(item, "valid_until"),
        decided_by: text(item, "decided_by"),
    })
}

fn event_view(item: &Item, now: i64) -> Option<BreakGlassView> {
    let mut status = text(item, "status")?;
    let ends_at = num(item, "ends_at")?;
    if status == "open" && ends_at <= now {
        status = "expired".into();
    }
    Some(BreakGlassView {
        id: text(item, "id")?,
        profile: text(item, "profile")?,
        caller: text(item, "caller")?,
        caller_arn: text(item, "caller_arn")?,
        reason: text(item, "reason")?,
        justification: text(item, "justification").unwrap_or_default(),
        status,
        opened_at: num(item, "created_at")?,
        ends_at,
        closed_by: text(item, "closed_by"),
    })
}

/// Which item of a cancelled transaction failed its condition.
fn failed_condition<R>(
    e: &aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError, R>,
    index: usize,
) -> bool {
    matches!(e.as_service_error(), Some(TransactWriteItemsError::TransactionCanceledException(c))
        if c.cancellation_reasons().get(index).and_then(|r| r.code()) == Some("ConditionalCheckFailed"))
}

impl DynamoGates {
    /// Run a transaction whose first item is the guarded one: `Ok(false)`
    /// when its condition failed, `Ok(true)` when everything was written.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, ApiError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if failed_condition(&e, 0) => Ok(false),
            Err(e) => Err(dep(e)),
        }
    }

    /// In one transaction: apply `update` to a record and drop the pointer
    /// that still links to it (`link` = `id`). `Ok(false)` when the record's
    /// own condition failed (the transition is not allowed).
    async fn update_and_unlink(
        &self,
        table: &str,
        update: Update,
        pointer_key: AttributeValue,
        link: &str,
        id: &str,
    ) -> Result<bool, ApiError> {
        let unlink = Delete::builder()
            .table_name(table)
            .key("pk", pointer_key)
            .condition_expression("attribute_not_exists(pk) OR #link = :id")
            .expression_attribute_names("#link", link)
            .expression_attribute_values(":id", s(id))
            .build()
            .map_err(dep)?;
        self.transact(vec![
            TransactWriteItem::builder().update(update).build(),
            TransactWriteItem::builder().delete(unlink).build(),
        ])
        .await
    }

    async fn get(&self, table: &str, key: AttributeValue) -> Result<Option<Item>, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(table)
            .key("pk", key)
            .consistent_read(true)
            .send()
            .await
            .map_err(dep)?;
        Ok(out.item)
    }

    async fn by_status(&self, table: &str, status: &str) -> Result<Vec<Item>, ApiError> {
        let out = self
            .client
            .query()
            .table_name(table)
            .index_name("by-status")
            .key_condition_expression("#s = :s")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":s", s(status))
            .scan_index_forward(false)
            .limit(200)
            .send()
            .await
            .map_err(dep)?;
        Ok(out.items.unwrap_or_default())
    }
}

impl GateStore for DynamoGates {
    fn state<'a>(
        &'a self,
        caller: &'a str,
        profile: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<GateState, ApiError>> {
        Box::pin(async move {
            let keys = |table: &str| {
                KeysAndAttributes::builder()
                    .keys(HashMap::from([(
                        "pk".to_string(),
                        pointer(caller, profile),
                    )]))
                    .consistent_read(true)
                    .build()
                    .map(|k| (table.to_string(), k))
            };
            let out = self
                .client
                .batch_get_item()
                .set_request_items(Some(HashMap::from([
                    keys(&self.approvals).map_err(dep)?,
                    keys(&self.breakglass).map_err(dep)?,
                ])))
                .send()
                .await
                .map_err(dep)?;
            // An unprocessed key is unknown state: fail closed rather than guess.
            if out.unprocessed_keys().is_some_and(|u| !u.is_empty()) {
                return Err(ApiError::dependency(
                    Dependency::DynamoDb,
                    "BatchGetItem left keys unprocessed",
                ));
            }
            let first = |table: &str| {
                out.responses()
                    .and_then(|r| r.get(table))
                    .and_then(|items| items.first())
                    .cloned()
            };
            let approval = first(&self.approvals).and_then(|p| {
                (text(&p, "state").as_deref() == Some("approved") && num(&p, "until")? > now).then(
                    || ApprovedRequest {
                        id: text(&p, "request_id").unwrap_or_default(),
                        duration_seconds: num(&p, "duration_seconds").unwrap_or(0) as u32,
                        valid_until: chrono::DateTime::from_timestamp(
                            num(&p, "until").unwrap_or(0),
                            0,
                        )
                        .unwrap_or_default(),
                    },
                )
            });
            let break_glass = first(&self.breakglass).and_then(|p| {
                (num(&p, "until")? > now).then(|| ActiveBreakGlass {
                    id: text(&p, "event_id").unwrap_or_default(),
                    ends_at: chrono::DateTime::from_timestamp(num(&p, "until").unwrap_or(0), 0)
                        .unwrap_or_default(),
                })
            });
            Ok(GateState {
                approval,
                break_glass,
            })
        })
    }

    fn open_request<'a>(
        &'a self,
        r: &'a RequestView,
        now: i64,
    ) -> BoxFut<'a, Result<String, ApiError>> {
        Box::pin(async move {
            let pointer_put = Put::builder()
                .table_name(&self.approvals)
                .item("pk", pointer(&r.caller, &r.profile))
                .item("request_id", s(&r.id))
                .item("state", s("pending"))
                .item("until", n(r.expires_at))
                .item("duration_seconds", n(i64::from(r.duration_seconds)))
                .item("ttl", n(r.expires_at + KEEP_SECONDS))
                // Only when nothing pending or approved is in the way.
                .condition_expression("attribute_not_exists(pk) OR #until <= :now")
                .expression_attribute_names("#until", "until")
                .expression_attribute_values(":now", n(now))
                .build()
                .map_err(dep)?;
            let justification = if r.justification.is_empty() {
                "(requested by a vend)"
            } else {
                &r.justification
            };
            let record = Put::builder()
                .table_name(&self.approvals)
                .item("pk", s(&format!("req#{}", r.id)))
                .item("id", s(&r.id))
                .item("profile", s(&r.profile))
                .item("caller", s(&r.caller))
                .item("caller_arn", s(&r.caller_arn))
                .item("justification", s(justification))
                .item("duration_seconds", n(i64::from(r.duration_seconds)))
                .item("status", s("pending"))
                .item("created_at", n(r.created_at))
                .item("expires_at", n(r.expires_at))
                .item("required", n(i64::from(r.required)))
                .item("ttl", n(r.expires_at + KEEP_SECONDS))
                .condition_expression("attribute_not_exists(pk)");
            let items = vec![
                TransactWriteItem::builder().put(pointer_put).build(),
                TransactWriteItem::builder()
                    .put(record.build().map_err(dep)?)
                    .build(),
            ];
            if self.transact(items).await? {
                return Ok(r.id.clone());
            }
            // Someone's request is already pending or approved: that one.
            let existing = self
                .get(&self.approvals, pointer(&r.caller, &r.profile))
                .await?;
            existing
                .and_then(|p| text(&p, "request_id"))
                .ok_or_else(|| {
                    ApiError::dependency(Dependency::DynamoDb, "the open request vanished")
                })
        })
    }

    fn request<'a>(
        &'a self,
        id: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<Option<RequestView>, ApiError>> {
        Box::pin(async move {
            let item = self.get(&self.approvals, s(&format!("req#{id}"))).await?;
            Ok(item.and_then(|i| request_view(&i, now)))
        })
    }

    fn requests<'a>(
        &'a self,
        status: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<Vec<RequestView>, ApiError>> {
        Box::pin(async move {
            let stored = if status == "expired" {
                "pending"
            } else {
                status
            };
            let items = self.by_status(&self.approvals, stored).await?;
            Ok(items
                .iter()
                .filter_map(|i| request_view(i, now))
                .filter(|r| r.status == status)
                .collect())
        })
    }

    fn approve<'a>(
        &'a self,
        r: &'a RequestView,
        approver: &'a str,
        ttl: u32,
        now: i64,
    ) -> BoxFut<'a, Result<RequestView, ApiError>> {
        Box::pin(async move {
            let added = self
                .client
                .update_item()
                .table_name(&self.approvals)
                .key("pk", s(&format!("req#{}", r.id)))
                .update_expression("ADD approvals :me")
                .condition_expression(
                    "#s = :pending AND expires_at > :now AND NOT contains(approvals, :who)",
                )
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":me", AttributeValue::Ss(vec![approver.to_string()]))
                .expression_attribute_values(":who", s(approver))
                .expression_attribute_values(":pending", s("pending"))
                .expression_attribute_values(":now", n(now))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            let item = match added {
                Ok(out) => out.attributes.unwrap_or_default(),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    let current = self.request(&r.id, now).await?.unwrap_or_else(|| r.clone());
                    return Err(conflict(
                        if current.approvals.iter().any(|a| a == approver) {
                            format!(
                                "you already approved request {}; it needs {} distinct approvers",
                                r.id, r.required
                            )
                        } else {
                            format!(
                                "request {} is {}; only pending requests can be approved",
                                r.id, current.status
                            )
                        },
                    ));
                }
                Err(e) => return Err(dep(e)),
            };
            let counted = item
                .get("approvals")
                .and_then(|v| v.as_ss().ok())
                .map_or(0, Vec::len);
            if counted >= r.required as usize {
                let valid_until = now + i64::from(ttl);
                let approve = Update::builder()
                    .table_name(&self.approvals)
                    .key("pk", s(&format!("req#{}", r.id)))
                    .update_expression("SET #s = :approved, valid_until = :vu, expires_at = :vu, decided_by = :by, #ttl = :ttl")
                    .condition_expression("#s = :pending")
                    .expression_attribute_names("#s", "status")
                    .expression_attribute_names("#ttl", "ttl")
                    .expression_attribute_values(":approved", s("approved"))
                    .expression_attribute_values(":pending", s("pending"))
                    .expression_attribute_values(":vu", n(valid_until))
                    .expression_attribute_values(":by", s(approver))
                    .expression_attribute_values(":ttl", n(valid_until + KEEP_SECONDS))
                    .build()
                    .map_err(dep)?;
                let link = Update::builder()
                    .table_name(&self.approvals)
                    .key("pk", pointer(&r.caller, &r.profile))
                    .update_expression(
                        "SET #state = :approved, #until = :vu, duration_seconds = :d, #ttl = :ttl",
                    )
                    .condition_expression("request_id = :id")
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_names("#until", "until")
                    .expression_attribute_names("#ttl", "ttl")
                    .expression_attribute_values(":approved", s("approved"))
                    .expression_attribute_values(":vu", n(valid_until))
                    .expression_attribute_values(":d", n(i64::from(r.duration_seconds)))
                    .expression_attribute_values(":id", s(&r.id))
                    .expression_attribute_values(":ttl", n(valid_until + KEEP_SECONDS))
                    .build()
                    .map_err(dep)?;
                let items = vec![
                    TransactWriteItem::builder().update(approve).build(),
                    TransactWriteItem::builder().update(link).build(),
                ];
                // A failed condition: another approver's write completed the
                // quorum first, the same outcome.
                self.transact(items).await?;
            }
            self.request(&r.id, now)
                .await?
                .ok_or_else(|| ApiError::Missing(format!("no request {}", r.id)))
        })
    }

    fn finish<'a>(
        &'a self,
        r: &'a RequestView,
        status: &'a str,
        by: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<RequestView, ApiError>> {
        Box::pin(async move {
            let update = Update::builder()
                .table_name(&self.approvals)
                .key("pk", s(&format!("req#{}", r.id)))
                .update_expression("SET #s = :final, decided_by = :by")
                .condition_expression("#s = :pending AND expires_at > :now")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":final", s(status))
                .expression_attribute_values(":pending", s("pending"))
                .expression_attribute_values(":by", s(by))
                .expression_attribute_values(":now", n(now))
                .build()
                .map_err(dep)?;
            let pointer_key = pointer(&r.caller, &r.profile);
            if !self
                .update_and_unlink(&self.approvals, update, pointer_key, "request_id", &r.id)
                .await?
            {
                let current = self.request(&r.id, now).await?.unwrap_or_else(|| r.clone());
                return Err(conflict(format!(
                    "request {} is {}; transitions are one-way",
                    r.id, current.status
                )));
            }
            self.request(&r.id, now)
                .await?
                .ok_or_else(|| ApiError::Missing(format!("no request {}", r.id)))
        })
    }

    fn open_break_glass<'a>(
        &'a self,
        e: &'a BreakGlassView,
        now: i64,
    ) -> BoxFut<'a, Result<(), ApiError>> {
        Box::pin(async move {
            let pointer_put = Put::builder()
                .table_name(&self.breakglass)
                .item("pk", pointer(&e.caller, &e.profile))
                .item("event_id", s(&e.id))
                .item("until", n(e.ends_at))
                .item("ttl", n(e.ends_at + KEEP_SECONDS))
                .condition_expression("attribute_not_exists(pk) OR #until <= :now")
                .expression_attribute_names("#until", "until")
                .expression_attribute_values(":now", n(now))
                .build()
                .map_err(dep)?;
            let record = Put::builder()
                .table_name(&self.breakglass)
                .item("pk", s(&format!("event#{}", e.id)))
                .item("id", s(&e.id))
                .item("profile", s(&e.profile))
                .item("caller", s(&e.caller))
                .item("caller_arn", s(&e.caller_arn))
                .item("reason", s(&e.reason))
                .item("justification", s(&e.justification))
                .item("status", s("open"))
                .item("created_at", n(e.opened_at))
                .item("ends_at", n(e.ends_at))
                .item("ttl", n(e.ends_at + KEEP_SECONDS))
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
                Err(conflict(format!(
                    "a break-glass event is already open for you on {}; close it first",
                    e.profile
                )))
            }
        })
    }

    fn break_glass<'a>(
        &'a self,
        id: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<Option<BreakGlassView>, ApiError>> {
        Box::pin(async move {
            let item = self
                .get(&self.breakglass, s(&format!("event#{id}")))
                .await?;
            Ok(item.and_then(|i| event_view(&i, now)))
        })
    }

    fn open_break_glass_events<'a>(
        &'a self,
        now: i64,
    ) -> BoxFut<'a, Result<Vec<BreakGlassView>, ApiError>> {
        Box::pin(async move {
            let items = self.by_status(&self.breakglass, "open").await?;
            Ok(items.iter().filter_map(|i| event_view(i, now)).collect())
        })
    }

    fn close_break_glass<'a>(
        &'a self,
        e: &'a BreakGlassView,
        by: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<BreakGlassView, ApiError>> {
        Box::pin(async move {
            let close = Update::builder()
                .table_name(&self.breakglass)
                .key("pk", s(&format!("event#{}", e.id)))
                .update_expression("SET #s = :closed, closed_by = :by, ends_at = :now")
                .condition_expression("#s = :open AND ends_at > :now")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":closed", s("closed"))
                .expression_attribute_values(":open", s("open"))
                .expression_attribute_values(":by", s(by))
                .expression_attribute_values(":now", n(now))
                .build()
                .map_err(dep)?;
            let pointer_key = pointer(&e.caller, &e.profile);
            if !self
                .update_and_unlink(&self.breakglass, close, pointer_key, "event_id", &e.id)
                .await?
            {
                return Err(conflict(format!("break-glass event {} is not open", e.id)));
            }
            self.break_glass(&e.id, now)
                .await?
                .ok_or_else(|| ApiError::Missing(format!("no break-glass event {}", e.id)))
        })
    }
}
