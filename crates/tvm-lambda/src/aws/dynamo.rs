//! Session records in DynamoDB. Attribute names match `infra/tables.json`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use tvm_core::api::{SessionStatus, SessionView};
use tvm_core::vend::SessionRecord;

use super::attr::{n, s};
use super::{
    failed_condition, keys, AwsError, BoxFut, Dependency, GateKind, Gates, ParentGate,
    RevocationMarker, SessionQuery, SessionStore, StillOpen,
};

pub struct DynamoSessions {
    client: Client,
    table: String,
    /// The approvals and break-glass tables, whose pointers a gated vend's
    /// record checks.
    approvals: String,
    break_glass: String,
}

impl DynamoSessions {
    pub fn new(client: Client, table: String, approvals: String, break_glass: String) -> Self {
        Self {
            client,
            table,
            approvals,
            break_glass,
        }
    }

    /// The pointer of a gated grant must still link to its approval or
    /// event, unexpired (and the approval still be approved).
    fn still_open(&self, o: &StillOpen, now: i64) -> Result<ConditionCheck, AwsError> {
        let (table, link, extra) = match o.gate {
            GateKind::Approval => (&self.approvals, "request_id", " AND #state = :approved"),
            GateKind::BreakGlass => (&self.break_glass, "event_id", ""),
        };
        let mut check = ConditionCheck::builder()
            .table_name(table)
            .key("pk", s(&keys::open_pointer(&o.caller_arn, &o.profile)))
            .condition_expression(format!("#link = :id AND #until > :now{extra}"))
            .expression_attribute_names("#link", link)
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":id", s(&o.id))
            .expression_attribute_values(":now", n(now));
        if o.gate == GateKind::Approval {
            check = check
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(
                    ":approved",
                    s(tvm_core::approval::RequestStatus::Approved.as_str()),
                );
        }
        check.build().map_err(dep)
    }

    /// A vend under a break-glass event marks it (while it is open), so that
    /// closing it knows whether there is anything to revoke.
    fn mark_vended(&self, o: &StillOpen, now: i64) -> Result<Update, AwsError> {
        Update::builder()
            .table_name(&self.break_glass)
            .key("pk", s(&keys::break_glass_event(&o.id)))
            .update_expression("SET vended = :t")
            .condition_expression("#s = :open AND ends_at > :now")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .expression_attribute_values(
                ":open",
                s(tvm_core::approval::BreakGlassStatus::Open.as_str()),
            )
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(dep)
    }
}

impl DynamoSessions {
    /// The revocation state must not hold the chain's SourceIdentity or
    /// grant, nor a cut-off for its first caller after the parent was issued.
    fn not_in_revocations(&self, p: &ParentGate) -> Result<ConditionCheck, AwsError> {
        let mut check = ConditionCheck::builder()
            .table_name(&self.table)
            .key("session_id", s(keys::REVOCATIONS));
        let mut clauses = Vec::new();
        for (i, key) in p.absent.iter().enumerate() {
            check = check.expression_attribute_names(format!("#a{i}"), key);
            clauses.push(format!("attribute_not_exists(#a{i})"));
        }
        clauses.push("(attribute_not_exists(#c) OR #c.#b <= :issued)".into());
        check
            .expression_attribute_names("#c", &p.caller_entry)
            .expression_attribute_names("#b", "b")
            .expression_attribute_values(":issued", n(p.issued_at))
            .condition_expression(clauses.join(" AND "))
            .build()
            .map_err(dep)
    }
}

/// A session record's item (attribute names as in `infra/tables.json`).
fn session_item(r: &SessionRecord, status: SessionStatus) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("session_id".to_string(), s(&r.session_id)),
        ("request_id".to_string(), s(&r.request_id)),
        ("caller".to_string(), s(&r.caller)),
        ("caller_arn".to_string(), s(&r.caller_arn)),
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
        ("role_session_name".to_string(), s(&r.role_session_name)),
        ("status".to_string(), s(status.as_str())),
        ("ttl".to_string(), n(r.delete_after.timestamp())),
    ]);
    if let Some(id) = r.via.id() {
        item.insert("via_id".into(), s(id));
    }
    // An oidc caller has no account.
    if !r.account.is_empty() {
        item.insert("account".into(), s(&r.account));
    }
    if let Some(l) = &r.lineage {
        item.insert("origin".into(), s(&l.caller));
        item.insert("origin_via".into(), s(&l.via));
    }
    item
}

/// A conditional put whose condition failed left what is stored, which is
/// what the caller wanted kept: done.
fn kept_if_condition_failed<R, R2>(
    put: Result<
        R,
        aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::put_item::PutItemError, R2>,
    >,
) -> Result<(), AwsError>
where
    R2: std::fmt::Debug + Send + Sync + 'static,
{
    match put {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(dep(e)),
    }
}

fn dep<E: std::error::Error + Send + Sync + 'static>(e: E) -> AwsError {
    AwsError::unavailable(Dependency::DynamoDb, e)
}

impl SessionStore for DynamoSessions {
    fn record<'a>(
        &'a self,
        r: &'a SessionRecord,
        gates: Gates,
    ) -> BoxFut<'a, Result<(), AwsError>> {
        Box::pin(async move {
            let item = session_item(r, SessionStatus::Issued);
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(session_id)")
                .build()
                .map_err(dep)?;
            let not_revoked = |key: String| {
                ConditionCheck::builder()
                    .table_name(&self.table)
                    .key("session_id", AttributeValue::S(key))
                    .condition_expression("attribute_not_exists(session_id) OR #until <= :now")
                    .expression_attribute_names("#until", "until")
                    .expression_attribute_values(":now", n(gates.now))
                    .build()
                    .map_err(dep)
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
                .map_err(dep)?;
            let mut items = vec![
                TransactWriteItem::builder().put(put).build(),
                TransactWriteItem::builder()
                    .condition_check(not_revoked(keys::revoked_caller(&r.caller))?)
                    .build(),
                TransactWriteItem::builder()
                    .condition_check(not_revoked(keys::revoked_pair(&r.caller, &r.profile))?)
                    .build(),
                TransactWriteItem::builder().update(count).build(),
            ];
            if let Some(open) = &gates.still_open {
                items.push(
                    TransactWriteItem::builder()
                        .condition_check(self.still_open(open, gates.now)?)
                        .build(),
                );
                if open.gate == GateKind::BreakGlass {
                    items.push(
                        TransactWriteItem::builder()
                            .update(self.mark_vended(open, gates.now)?)
                            .build(),
                    );
                }
            }
            // A vend for a vended session: whatever revoked the chain it
            // comes from refuses it too.
            let parent_at = items.len();
            if let Some(p) = &gates.parent {
                for key in p.gates(r) {
                    items.push(
                        TransactWriteItem::builder()
                            .condition_check(not_revoked(key)?)
                            .build(),
                    );
                }
                items.push(
                    TransactWriteItem::builder()
                        .condition_check(self.not_in_revocations(p)?)
                        .build(),
                );
            }
            match self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) => {
                    // Items 1 and 2 are the revocation checks, 3 the counter.
                    if failed_condition(&e, 1)
                        || failed_condition(&e, 2)
                        || (parent_at..parent_at + 3).any(|i| failed_condition(&e, i))
                    {
                        return Err(AwsError::Revoked);
                    }
                    if failed_condition(&e, 3) {
                        return Err(AwsError::RateLimited {
                            retry_after: window.retry_after(gates.now),
                        });
                    }
                    if gates.still_open.is_some()
                        && (failed_condition(&e, 4) || failed_condition(&e, 5))
                    {
                        return Err(AwsError::GateClosed);
                    }
                    Err(dep(e))
                }
            }
        })
    }

    fn set_status<'a>(
        &'a self,
        session_id: &'a str,
        status: SessionStatus,
        at: i64,
    ) -> BoxFut<'a, Result<(), AwsError>> {
        Box::pin(async move {
            let update = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("session_id", s(session_id))
                .condition_expression("attribute_exists(session_id)")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":status", s(status.as_str()));
            // A revoked session joins the sparse revocation index (its day
            // and time), which `tvm audit` reads.
            let update = match status {
                SessionStatus::Revoked => update
                    // The first revocation's time stays: revoking again must
                    // not hide the calls made in between from the audit.
                    .update_expression(
                        "SET #s = :status, revoked_at = if_not_exists(revoked_at, :at), revoked_on = if_not_exists(revoked_on, :day)",
                    )
                    .expression_attribute_values(":at", n(at))
                    .expression_attribute_values(":day", s(&revocation_partition(at, session_id))),
                _ => update.update_expression("SET #s = :status"),
            };
            update.send().await.map_err(dep)?;
            Ok(())
        })
    }

    fn discard<'a>(&'a self, r: &'a SessionRecord, at: i64) -> BoxFut<'a, Result<(), AwsError>> {
        Box::pin(async move {
            // Not in the revocation index: callers make discards (a flood
            // of them must not push real revocations out of what `tvm
            // audit` reads); `discarded_at` says when.
            let mut item = session_item(r, SessionStatus::Discarded);
            item.insert("discarded_at".into(), n(at));
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(session_id) OR #s = :issued")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":issued", s(SessionStatus::Issued.as_str()))
                .send()
                .await;
            // Recorded already, and no longer issued (revoked meanwhile):
            // accounted for.
            kept_if_condition_failed(put)
        })
    }

    fn get<'a>(&'a self, session_id: &'a str) -> BoxFut<'a, Result<Option<SessionView>, AwsError>> {
        Box::pin(async move {
            // Gate items share the table; their keys start with '#'.
            if session_id.starts_with('#') {
                return Ok(None);
            }
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("session_id", s(session_id))
                .consistent_read(true)
                .send()
                .await
                .map_err(dep)?;
            Ok(out.item().and_then(view))
        })
    }

    fn list<'a>(
        &'a self,
        query: &'a SessionQuery,
    ) -> BoxFut<'a, Result<Vec<SessionView>, AwsError>> {
        Box::pin(async move {
            // Groups of partitions, newest first: one for a caller or a
            // profile; for revocations one group per day (newest first) of
            // its shards, each group read whole (its shards interleave in time).
            let (index, attr, range, partitions, since, limit) = match query {
                SessionQuery::Caller {
                    caller,
                    since,
                    limit,
                } => (
                    "by-caller",
                    "caller",
                    "issued_at",
                    vec![vec![caller.clone()]],
                    *since,
                    *limit,
                ),
                SessionQuery::Profile { profile, limit } => (
                    "by-profile",
                    "profile",
                    "issued_at",
                    vec![vec![profile.clone()]],
                    None,
                    *limit,
                ),
                SessionQuery::Revoked { since, now, limit } => (
                    "by-revocation",
                    "revoked_on",
                    "revoked_at",
                    revocation_days(*since, *now),
                    Some(*since),
                    *limit,
                ),
            };
            // Pages of at most 1,000 until `limit` or the end: bounded by
            // `limit / 1000 + 1` queries per partition, and partitions until
            // a group fills `limit`.
            let mut found = Vec::new();
            for group in &partitions {
                for value in group {
                    // Each partition's newest `limit`: the union's newest
                    // `limit` is then exact.
                    let mut start = None;
                    let mut read = 0;
                    loop {
                        let page = limit.saturating_sub(read).clamp(1, 1000) as i32;
                        let mut q = self
                            .client
                            .query()
                            .table_name(&self.table)
                            .index_name(index)
                            .expression_attribute_names("#k", attr)
                            .expression_attribute_values(":v", s(value))
                            .scan_index_forward(false)
                            .limit(page)
                            .set_exclusive_start_key(start.take());
                        q = match since {
                            Some(t) => q
                                .key_condition_expression("#k = :v AND #r >= :since")
                                .expression_attribute_names("#r", range)
                                .expression_attribute_values(":since", n(t)),
                            None => q.key_condition_expression("#k = :v"),
                        };
                        let out = q.send().await.map_err(dep)?;
                        read += out.items().len();
                        found.extend(out.items().iter().filter_map(view));
                        match out.last_evaluated_key {
                            Some(key) if !key.is_empty() && read < limit => start = Some(key),
                            _ => break,
                        }
                    }
                }
                if found.len() >= limit {
                    break;
                }
            }
            // Shards interleave in time: the revocations in order.
            if matches!(query, SessionQuery::Revoked { .. }) {
                found.sort_by_key(|v| std::cmp::Reverse(v.revoked_at));
            }
            found.truncate(limit);
            Ok(found)
        })
    }

    fn revoke<'a>(&'a self, m: &'a RevocationMarker) -> BoxFut<'a, Result<(), AwsError>> {
        Box::pin(async move {
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("session_id", s(&keys::revoked(&m.scope)))
                .item("until", n(m.until))
                .item("by", s(&m.by))
                .item("reason", s(&m.reason))
                .item("at", n(m.at))
                .item("ttl", n(m.until + 86_400))
                .condition_expression("attribute_not_exists(session_id) OR #until < :until")
                .expression_attribute_names("#until", "until")
                .expression_attribute_values(":until", n(m.until))
                .send()
                .await;
            // A revocation lasting longer is already in place: keep it.
            kept_if_condition_failed(put)
        })
    }
}

/// Shards of a day in the revocation index: a caller revocation marks up
/// to 10,000 sessions, 16 at a time, faster than the 1,000 writes a second
/// one index partition takes (and a throttled index throttles the table).
const REVOCATION_SHARDS: u32 = 4;

fn revocation_day(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

/// The revocation index's partition for a session revoked at `at`: its UTC
/// day and a shard from its (random) session id, `2026-12-02#3`.
fn revocation_partition(at: i64, session_id: &str) -> String {
    let shard = session_id
        .chars()
        .next()
        .and_then(|c| c.to_digit(16))
        .unwrap_or(0)
        % REVOCATION_SHARDS;
    format!("{}#{shard}", revocation_day(at))
}

/// The revocation index's partitions from `since` to `now`: a group of
/// shards per day, newest day first.
fn revocation_days(since: i64, now: i64) -> Vec<Vec<String>> {
    let day = |t: i64| t.div_euclid(86_400);
    (day(since)..=day(now))
        .rev()
        .map(|d| {
            let day = revocation_day(d * 86_400);
            (0..REVOCATION_SHARDS)
                .map(|n| format!("{day}#{n}"))
                .collect()
        })
        .collect()
}

/// A session item as the API shows it; `None` for anything else.
fn view(item: &HashMap<String, AttributeValue>) -> Option<SessionView> {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let num = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    Some(SessionView {
        session_id: text("session_id")?,
        caller: text("caller")?,
        caller_arn: text("caller_arn")?,
        profile: text("profile")?,
        role_arn: text("role_arn")?,
        rule: text("rule").unwrap_or_default(),
        via: text("via").unwrap_or_default(),
        via_id: text("via_id"),
        origin: text("origin"),
        origin_via: text("origin_via"),
        duration_seconds: num("duration_seconds")? as u32,
        issued_at: num("issued_at")?,
        expires_at: num("expires_at")?,
        source_identity: text("source_identity")?,
        role_session_name: text("role_session_name"),
        revoked_at: num("revoked_at"),
        // A status tvm did not write (edited by hand) reads as issued: such a
        // session stays listed and revocable rather than vanishing.
        status: text("status")
            .and_then(|s| SessionStatus::parse(&s))
            .unwrap_or_else(|| {
                tracing::warn!(session_id = ?text("session_id"), "session item with an unknown status; treated as issued");
                SessionStatus::Issued
            }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocations_are_partitioned_by_day_and_shard() {
        // 2026-12-02T10:00:00Z
        let at = 1_796_205_600;
        assert_eq!(revocation_partition(at, "f0"), "2026-12-02#3");
        assert_eq!(revocation_partition(at, "40"), "2026-12-02#0");
        let days = revocation_days(at - 86_400, at);
        assert_eq!(days.len(), 2);
        assert_eq!(
            days[0],
            [
                "2026-12-02#0",
                "2026-12-02#1",
                "2026-12-02#2",
                "2026-12-02#3"
            ]
        );
        assert!(days[1][0].starts_with("2026-12-01#"));
        assert!(revocation_days(at + 86_400, at).is_empty());
    }
}
