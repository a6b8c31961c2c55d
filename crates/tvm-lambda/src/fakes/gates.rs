//! The in-memory approval and break-glass stores and the vend path's read of
//! them: one open request or event per caller and profile, one-way
//! transitions, conflicts as the DynamoDB adapter reports them.

use tvm_core::api::{BreakGlassView, RequestView};
use tvm_core::approval::{quorum_reached, BreakGlassStatus, RequestStatus};
use tvm_core::decision::{ActiveBreakGlass, ApprovedRequest, GateState};

use super::{ready, Memory};
use crate::aws::{keys, ApprovalStore, Approver, AwsError, BoxFut, BreakGlassStore, GateStates};

impl GateStates for Memory {
    fn state<'a>(
        &'a self,
        caller_arn: &'a str,
        profile: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<GateState, AwsError>> {
        let s = self.state();
        let pointer = keys::open_pointer(caller_arn, profile);
        let approval = s
            .request_pointers
            .get(&pointer)
            .and_then(|id| s.requests.get(id))
            .filter(|r| r.status.at(r.expires_at, now) == RequestStatus::Approved)
            .map(|r| ApprovedRequest {
                id: r.id.clone(),
                duration_seconds: r.duration_seconds,
                valid_until: chrono::DateTime::from_timestamp(r.expires_at, 0).unwrap_or_default(),
                caller_arn: r.caller_arn.clone(),
                attributes: r.attributes.clone(),
                bindings: r.bindings.clone(),
            });
        let break_glass = s
            .event_pointers
            .get(&pointer)
            .and_then(|id| s.events.get(id))
            .filter(|e| e.status.at(e.ends_at, now) == BreakGlassStatus::Open)
            .map(|e| ActiveBreakGlass {
                id: e.id.clone(),
                ends_at: chrono::DateTime::from_timestamp(e.ends_at, 0).unwrap_or_default(),
            });
        ready(Ok(GateState {
            approval,
            break_glass,
        }))
    }
}

fn seen(r: &RequestView, now: i64) -> RequestView {
    RequestView {
        status: r.status.at(r.expires_at, now),
        ..r.clone()
    }
}

impl ApprovalStore for Memory {
    fn open<'a>(&'a self, r: &'a RequestView, now: i64) -> BoxFut<'a, Result<String, AwsError>> {
        let mut s = self.state();
        let pointer = keys::open_pointer(&r.caller_arn, &r.profile);
        let current = s
            .request_pointers
            .get(&pointer)
            .and_then(|id| s.requests.get(id));
        if let Some(open) = current.filter(|o| o.expires_at > now) {
            return ready(Ok(open.id.clone()));
        }
        s.request_pointers.insert(pointer, r.id.clone());
        s.requests.insert(r.id.clone(), r.clone());
        ready(Ok(r.id.clone()))
    }

    fn get<'a>(
        &'a self,
        id: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<Option<RequestView>, AwsError>> {
        ready(Ok(self.state().requests.get(id).map(|r| seen(r, now))))
    }

    fn list<'a>(
        &'a self,
        status: RequestStatus,
        now: i64,
    ) -> BoxFut<'a, Result<Vec<RequestView>, AwsError>> {
        let s = self.state();
        let mut list: Vec<RequestView> = s
            .requests
            .values()
            .map(|r| seen(r, now))
            .filter(|r| r.status == status)
            .collect();
        list.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        ready(Ok(list))
    }

    fn approve<'a>(
        &'a self,
        r: &'a RequestView,
        approver: Approver<'a>,
        ttl: u32,
        now: i64,
    ) -> BoxFut<'a, Result<RequestView, AwsError>> {
        let mut s = self.state();
        let Some(stored) = s.requests.get_mut(&r.id) else {
            return ready(Err(AwsError::Missing(format!("no request {}", r.id))));
        };
        let status = stored.status.at(stored.expires_at, now);
        if status != RequestStatus::Pending {
            return ready(Err(AwsError::Conflict(format!(
                "request {} is {status}; only pending requests can be approved",
                r.id
            ))));
        }
        let same_principal = stored.approved_by.iter().any(|arn| {
            tvm_core::principal::stable_principal(arn).as_deref() == Some(approver.principal)
        });
        if same_principal || stored.approvals.iter().any(|a| a == approver.person) {
            return ready(Err(AwsError::Conflict(format!(
                "you already approved request {}; it needs {} distinct approvers",
                r.id, r.required
            ))));
        }
        stored.approvals.push(approver.person.to_string());
        stored.approved_by.push(approver.arn.to_string());
        stored.approvals.sort();
        if quorum_reached(stored.approvals.len(), stored.required) {
            let valid_until = now + i64::from(ttl);
            stored.status = RequestStatus::Approved;
            stored.valid_until = Some(valid_until);
            stored.expires_at = valid_until;
            stored.decided_by = Some(approver.arn.to_string());
        }
        ready(Ok(seen(stored, now)))
    }

    fn finish<'a>(
        &'a self,
        r: &'a RequestView,
        status: RequestStatus,
        by: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<RequestView, AwsError>> {
        let mut guard = self.state();
        let s = &mut *guard;
        let Some(stored) = s.requests.get_mut(&r.id) else {
            return ready(Err(AwsError::Missing(format!("no request {}", r.id))));
        };
        let current = stored.status.at(stored.expires_at, now);
        if !current.may_become(status) {
            return ready(Err(AwsError::Conflict(format!(
                "request {} is {current}; transitions are one-way",
                r.id
            ))));
        }
        stored.status = status;
        stored.decided_by = Some(by.to_string());
        let done = seen(stored, now);
        let pointer = keys::open_pointer(&r.caller_arn, &r.profile);
        if s.request_pointers.get(&pointer) == Some(&r.id) {
            s.request_pointers.remove(&pointer);
        }
        ready(Ok(done))
    }
}

impl BreakGlassStore for Memory {
    fn open<'a>(&'a self, e: &'a BreakGlassView, now: i64) -> BoxFut<'a, Result<(), AwsError>> {
        let mut s = self.state();
        let pointer = keys::open_pointer(&e.caller_arn, &e.profile);
        let current = s
            .event_pointers
            .get(&pointer)
            .and_then(|id| s.events.get(id));
        if current.is_some_and(|c| c.status.at(c.ends_at, now) == BreakGlassStatus::Open) {
            return ready(Err(AwsError::Conflict(format!(
                "a break-glass event is already open for you on {}; close it first",
                e.profile
            ))));
        }
        s.event_pointers.insert(pointer, e.id.clone());
        s.events.insert(e.id.clone(), e.clone());
        ready(Ok(()))
    }

    fn get<'a>(
        &'a self,
        id: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<Option<BreakGlassView>, AwsError>> {
        let s = self.state();
        let e = s.events.get(id).map(|e| BreakGlassView {
            status: e.status.at(e.ends_at, now),
            ..e.clone()
        });
        ready(Ok(e))
    }

    fn open_events<'a>(&'a self, now: i64) -> BoxFut<'a, Result<Vec<BreakGlassView>, AwsError>> {
        let s = self.state();
        let open = s
            .events
            .values()
            .filter(|e| e.status.at(e.ends_at, now) == BreakGlassStatus::Open)
            .cloned()
            .collect();
        ready(Ok(open))
    }

    fn close<'a>(
        &'a self,
        e: &'a BreakGlassView,
        by: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<BreakGlassView, AwsError>> {
        let mut guard = self.state();
        let s = &mut *guard;
        let Some(stored) = s.events.get_mut(&e.id) else {
            return ready(Err(AwsError::Missing(format!(
                "no break-glass event {}",
                e.id
            ))));
        };
        if stored.status.at(stored.ends_at, now) != BreakGlassStatus::Open {
            return ready(Err(AwsError::Conflict(format!(
                "break-glass event {} is not open",
                e.id
            ))));
        }
        stored.status = BreakGlassStatus::Closed;
        stored.closed_by = Some(by.to_string());
        stored.ends_at = now;
        let closed = stored.clone();
        let pointer = keys::open_pointer(&e.caller_arn, &e.profile);
        if s.event_pointers.get(&pointer) == Some(&e.id) {
            s.event_pointers.remove(&pointer);
        }
        ready(Ok(closed))
    }
}
