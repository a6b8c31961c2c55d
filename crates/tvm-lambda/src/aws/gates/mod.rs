//! Approvals and break-glass in DynamoDB: `approvals.rs` and `break_glass.rs`
//! hold the two lifecycles, this module the vend path's read and what both
//! share.
//!
//! Each table holds the records (`req#<id>`, `event#<id>`) and, per caller
//! and profile, one pointer (`open#<caller>#<profile>`) to the request or
//! event that currently matters (see `keys`). The vend path reads both
//! pointers in one BatchGetItem; every state change is a conditional write,
//! so transitions are one-way and racing approvers are each counted exactly
//! once.

mod approvals;
mod break_glass;

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use tvm_core::api::{BreakGlassView, RequestView};
use tvm_core::approval::{BreakGlassStatus, RequestStatus};
use tvm_core::decision::{ActiveBreakGlass, ApprovedRequest, GateState};

use super::attr::s;
use super::{failed_condition, keys, AwsError, BoxFut, Dependency, GateStates};

pub struct DynamoGates {
    pub(super) client: Client,
    pub(super) approvals: String,
    pub(super) break_glass: String,
}

impl DynamoGates {
    pub fn new(client: Client, approvals: String, break_glass: String) -> Self {
        Self {
            client,
            approvals,
            break_glass,
        }
    }
}

/// How long records are kept after they stop mattering.
pub(super) const KEEP_SECONDS: i64 = 90 * 86_400;

pub(super) fn pointer(caller: &str, profile: &str) -> AttributeValue {
    s(&keys::open_pointer(caller, profile))
}
/// The pointer of a caller and profile to `id` (in attribute `link`), put
/// only when nothing open is in the way: no pointer, or one whose `until`
/// has passed. Callers add their own attributes and build it.
pub(super) fn open_pointer(
    table: &str,
    caller: &str,
    profile: &str,
    (link, id): (&str, &str),
    until: i64,
    now: i64,
) -> aws_sdk_dynamodb::types::builders::PutBuilder {
    use super::attr::n;
    aws_sdk_dynamodb::types::Put::builder()
        .table_name(table)
        .item("pk", pointer(caller, profile))
        .item(link, s(id))
        .item("until", n(until))
        .item("ttl", n(until + KEEP_SECONDS))
        .condition_expression("attribute_not_exists(pk) OR #until <= :now")
        .expression_attribute_names("#until", "until")
        .expression_attribute_values(":now", n(now))
}

pub(super) fn dep<E: std::error::Error + Send + Sync + 'static>(e: E) -> AwsError {
    AwsError::unavailable(Dependency::DynamoDb, e)
}

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn text(item: &Item, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}
pub(super) fn num(item: &Item, k: &str) -> Option<i64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// A record's status; one tvm did not write is logged and the record read as
/// absent (it never vends: the vend path reads the pointers).
fn parsed<T>(item: &Item, parse: fn(&str) -> Option<T>) -> Option<T> {
    let raw = text(item, "status")?;
    let status = parse(&raw);
    if status.is_none() {
        tracing::warn!(id = ?text(item, "id"), status = %raw, "record with an unknown status; read as absent");
    }
    status
}

/// A string map stored as one JSON string attribute (attributes, bindings).
pub(super) fn json_map(map: &BTreeMap<String, String>) -> String {
    serde_json::to_string(map).unwrap_or_default()
}

/// A stored map; absent reads as empty, unreadable as `None` (never vends).
fn stored_map(item: &Item, k: &str) -> Option<BTreeMap<String, String>> {
    match text(item, k) {
        None => Some(BTreeMap::new()),
        Some(raw) => serde_json::from_str(&raw).ok(),
    }
}

pub(super) fn request_view(item: &Item, now: i64) -> Option<RequestView> {
    let expires_at = num(item, "expires_at")?;
    let status = parsed(item, RequestStatus::parse)?.at(expires_at, now);
    let mut approvals: Vec<String> = item
        .get("approvals")
        .and_then(|v| v.as_ss().ok())
        .cloned()
        .unwrap_or_default();
    approvals.sort();
    let mut approved_by: Vec<String> = item
        .get("approved_by")
        .and_then(|v| v.as_ss().ok())
        .cloned()
        .unwrap_or_default();
    approved_by.sort();
    Some(RequestView {
        id: text(item, "id")?,
        profile: text(item, "profile")?,
        caller: text(item, "caller")?,
        caller_arn: text(item, "caller_arn")?,
        persons: item
            .get("persons")
            .and_then(|v| v.as_ss().ok())
            .cloned()
            .unwrap_or_default(),
        justification: text(item, "justification").unwrap_or_default(),
        duration_seconds: num(item, "duration_seconds")? as u32,
        status,
        created_at: num(item, "created_at")?,
        expires_at,
        required: num(item, "required")? as u32,
        approvals,
        approved_by,
        attributes: stored_map(item, "attributes")?,
        bindings: stored_map(item, "bindings")?,
        valid_until: num(item, "valid_until"),
        decided_by: text(item, "decided_by"),
    })
}

pub(super) fn event_view(item: &Item, now: i64) -> Option<BreakGlassView> {
    let ends_at = num(item, "ends_at")?;
    let status = parsed(item, BreakGlassStatus::parse)?.at(ends_at, now);
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
        // Events opened before vends were marked on them: assume so.
        vended: item.contains_key("vended") || !item.contains_key("marks_vends"),
    })
}

impl DynamoGates {
    /// Run a transaction whose first item is the guarded one: `Ok(false)`
    /// when its condition failed, `Ok(true)` when everything was written.
    pub(super) async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, AwsError> {
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
    pub(super) async fn update_and_unlink(
        &self,
        table: &str,
        update: Update,
        pointer_key: AttributeValue,
        link: &str,
        id: &str,
    ) -> Result<bool, AwsError> {
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

    pub(super) async fn get_item(
        &self,
        table: &str,
        key: AttributeValue,
    ) -> Result<Option<Item>, AwsError> {
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

    pub(super) async fn by_status(&self, table: &str, status: &str) -> Result<Vec<Item>, AwsError> {
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

impl GateStates for DynamoGates {
    fn state<'a>(
        &'a self,
        caller: &'a str,
        profile: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<GateState, AwsError>> {
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
                    keys(&self.break_glass).map_err(dep)?,
                ])))
                .send()
                .await
                .map_err(dep)?;
            // An unprocessed key is unknown state: fail closed rather than guess.
            if out.unprocessed_keys().is_some_and(|u| !u.is_empty()) {
                return Err(AwsError::unavailable(
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
                (text(&p, "state").as_deref() == Some(RequestStatus::Approved.as_str())
                    && num(&p, "until")? > now)
                    .then(|| {
                        Some(ApprovedRequest {
                            id: text(&p, "request_id").unwrap_or_default(),
                            caller_arn: text(&p, "caller_arn")?,
                            attributes: stored_map(&p, "attributes")?,
                            bindings: stored_map(&p, "bindings")?,
                            duration_seconds: num(&p, "duration_seconds").unwrap_or(0) as u32,
                            valid_until: chrono::DateTime::from_timestamp(
                                num(&p, "until").unwrap_or(0),
                                0,
                            )
                            .unwrap_or_default(),
                        })
                    })
                    .flatten()
            });
            let break_glass = first(&self.break_glass).and_then(|p| {
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
}
