//! Approval requests: pending -> approved | denied | cancelled, one way.

use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem, Update};
use tvm_core::api::RequestView;
use tvm_core::approval::{quorum_reached, RequestStatus};

use super::{dep, json_map, open_pointer, pointer, request_view, text, DynamoGates, KEEP_SECONDS};
use crate::aws::attr::{n, s};
use crate::aws::{keys, ApprovalStore, Approver, AwsError, BoxFut, Dependency};

impl DynamoGates {
    /// The principals that approved a request so far.
    async fn approver_principals(&self, id: &str) -> Result<Vec<String>, AwsError> {
        let item = self
            .get_item(&self.approvals, s(&keys::request(id)))
            .await?;
        Ok(item
            .and_then(|i| {
                i.get("approver_principals")
                    .and_then(|v| v.as_ss().ok())
                    .cloned()
            })
            .unwrap_or_default())
    }
}

impl ApprovalStore for DynamoGates {
    fn open<'a>(&'a self, r: &'a RequestView, now: i64) -> BoxFut<'a, Result<String, AwsError>> {
        Box::pin(async move {
            // Only when nothing pending or approved is in the way.
            // The pointer is the exact caller's: another session of the same
            // role (another person in the same permission set) finds none.
            let (attributes, bindings) = (json_map(&r.attributes), json_map(&r.bindings));
            let pointer_put = open_pointer(
                &self.approvals,
                &r.caller_arn,
                &r.profile,
                ("request_id", &r.id),
                r.expires_at,
                now,
            )
            .item("state", s(RequestStatus::Pending.as_str()))
            .item("duration_seconds", n(i64::from(r.duration_seconds)))
            .item("caller_arn", s(&r.caller_arn))
            .item("attributes", s(&attributes))
            .item("bindings", s(&bindings))
            .build()
            .map_err(dep)?;
            let mut record = Put::builder()
                .table_name(&self.approvals)
                .item("pk", s(&keys::request(&r.id)))
                .item("id", s(&r.id))
                .item("profile", s(&r.profile))
                .item("caller", s(&r.caller))
                .item("caller_arn", s(&r.caller_arn))
                .item("justification", s(&r.justification))
                .item("attributes", s(&attributes))
                .item("bindings", s(&bindings))
                .item("duration_seconds", n(i64::from(r.duration_seconds)))
                .item("status", s(RequestStatus::Pending.as_str()))
                .item("created_at", n(r.created_at))
                .item("expires_at", n(r.expires_at))
                .item("required", n(i64::from(r.required)))
                .item("ttl", n(r.expires_at + KEEP_SECONDS))
                .condition_expression("attribute_not_exists(pk)");
            if !r.persons.is_empty() {
                record = record.item("persons", AttributeValue::Ss(r.persons.clone()));
            }
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
                .get_item(&self.approvals, pointer(&r.caller_arn, &r.profile))
                .await?;
            existing
                .and_then(|p| text(&p, "request_id"))
                .ok_or_else(|| {
                    AwsError::unavailable(Dependency::DynamoDb, "the open request vanished")
                })
        })
    }
    fn get<'a>(
        &'a self,
        id: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<Option<RequestView>, AwsError>> {
        Box::pin(async move {
            let item = self
                .get_item(&self.approvals, s(&keys::request(id)))
                .await?;
            Ok(item.and_then(|i| request_view(&i, now)))
        })
    }
    fn list<'a>(
        &'a self,
        status: RequestStatus,
        now: i64,
    ) -> BoxFut<'a, Result<Vec<RequestView>, AwsError>> {
        Box::pin(async move {
            let items = self
                .by_status(&self.approvals, status.stored().as_str())
                .await?;
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
        approver: Approver<'a>,
        ttl: u32,
        now: i64,
    ) -> BoxFut<'a, Result<RequestView, AwsError>> {
        Box::pin(async move {
            let Approver {
                person,
                principal,
                arn,
            } = approver;
            // One entry per person and per principal: the same person under
            // a second role, and a second session name of the same role
            // (which whoever assumes it may choose), are both refused.
            let added = self
                .client
                .update_item()
                .table_name(&self.approvals)
                .key("pk", s(&keys::request(&r.id)))
                .update_expression("ADD approvals :me, approved_by :arn, approver_principals :pr")
                .condition_expression(
                    "#s = :pending AND expires_at > :now AND NOT contains(approvals, :who) AND NOT contains(approver_principals, :principal)",
                )
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":me", AttributeValue::Ss(vec![person.to_string()]))
                .expression_attribute_values(":arn", AttributeValue::Ss(vec![arn.to_string()]))
                .expression_attribute_values(":who", s(person))
                .expression_attribute_values(":pr", AttributeValue::Ss(vec![principal.to_string()]))
                .expression_attribute_values(":principal", s(principal))
                .expression_attribute_values(":pending", s(RequestStatus::Pending.as_str()))
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
                    let current = ApprovalStore::get(self, &r.id, now)
                        .await?
                        .unwrap_or_else(|| r.clone());
                    let roles = self.approver_principals(&r.id).await?;
                    return Err(AwsError::Conflict(
                        if current.approvals.iter().any(|a| a == person)
                            || roles.iter().any(|p| p == principal)
                        {
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
            if quorum_reached(counted, r.required) {
                let valid_until = now + i64::from(ttl);
                let approve = Update::builder()
                    .table_name(&self.approvals)
                    .key("pk", s(&keys::request(&r.id)))
                    .update_expression("SET #s = :approved, valid_until = :vu, expires_at = :vu, decided_by = :by, #ttl = :ttl")
                    .condition_expression("#s = :pending")
                    .expression_attribute_names("#s", "status")
                    .expression_attribute_names("#ttl", "ttl")
                    .expression_attribute_values(":approved", s(RequestStatus::Approved.as_str()))
                    .expression_attribute_values(":pending", s(RequestStatus::Pending.as_str()))
                    .expression_attribute_values(":vu", n(valid_until))
                    .expression_attribute_values(":by", s(arn))
                    .expression_attribute_values(":ttl", n(valid_until + KEEP_SECONDS))
                    .build()
                    .map_err(dep)?;
                let link = Update::builder()
                    .table_name(&self.approvals)
                    .key("pk", pointer(&r.caller_arn, &r.profile))
                    .update_expression(
                        "SET #state = :approved, #until = :vu, duration_seconds = :d, #ttl = :ttl",
                    )
                    .condition_expression("request_id = :id")
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_names("#until", "until")
                    .expression_attribute_names("#ttl", "ttl")
                    .expression_attribute_values(":approved", s(RequestStatus::Approved.as_str()))
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
            ApprovalStore::get(self, &r.id, now)
                .await?
                .ok_or_else(|| AwsError::Missing(format!("no request {}", r.id)))
        })
    }
    fn finish<'a>(
        &'a self,
        r: &'a RequestView,
        status: RequestStatus,
        by: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<RequestView, AwsError>> {
        Box::pin(async move {
            let update = Update::builder()
                .table_name(&self.approvals)
                .key("pk", s(&keys::request(&r.id)))
                .update_expression("SET #s = :final, decided_by = :by")
                .condition_expression("#s = :pending AND expires_at > :now")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":final", s(status.as_str()))
                .expression_attribute_values(":pending", s(RequestStatus::Pending.as_str()))
                .expression_attribute_values(":by", s(by))
                .expression_attribute_values(":now", n(now))
                .build()
                .map_err(dep)?;
            let pointer_key = pointer(&r.caller_arn, &r.profile);
            if !self
                .update_and_unlink(&self.approvals, update, pointer_key, "request_id", &r.id)
                .await?
            {
                let current = ApprovalStore::get(self, &r.id, now)
                    .await?
                    .unwrap_or_else(|| r.clone());
                return Err(AwsError::Conflict(format!(
                    "request {} is {}; transitions are one-way",
                    r.id, current.status
                )));
            }
            ApprovalStore::get(self, &r.id, now)
                .await?
                .ok_or_else(|| AwsError::Missing(format!("no request {}", r.id)))
        })
    }
}
