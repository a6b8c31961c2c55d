//! The routes: one table, parsed once per request into a [`Route`], one
//! dispatch, and one decision log line written from the route's outcome.
//! Each resource has its file: `vend`, `profiles`, `sessions`,
//! `revocation`, `approvals`, `break_glass`.

mod approvals;
mod break_glass;
pub mod cors;
pub mod log;
mod profiles;
mod revocation;
mod sessions;
mod vend;

use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use lambda_http::Body;
use serde::Serialize;
use tvm_core::admission::admit;
use tvm_core::api::{ErrorBody, HealthResponse};
use tvm_core::approval::RequestAction;
use tvm_core::principal::Principal;

use crate::app::App;
use serde_json::Value;

use crate::aws::error_chain;
use crate::error::ApiError;
use crate::event::{self, check_body_size, parse_event, raw_request_id, truncate, Reply};
use log::{DecisionLog, Measures};

/// Every route tvm serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    Vend,
    Profiles,
    ListSessions,
    GetSession(String),
    RevokeSession(String),
    RevokeCaller,
    CreateRequest,
    ListRequests,
    GetRequest(String),
    ActOnRequest(String, RequestAction),
    OpenBreakGlass,
    ListBreakGlass,
    CloseBreakGlass(String),
}

/// One entry of the route table: a method, a path pattern (`{id}` is 32
/// hex characters) and the route it makes.
pub struct Entry {
    pub method: &'static str,
    pub path: &'static str,
    make: fn(String) -> Route,
}

const fn entry(method: &'static str, path: &'static str, make: fn(String) -> Route) -> Entry {
    Entry { method, path, make }
}

impl Route {
    /// The route table. `docs/api.md`, `template.yaml` and the Terraform
    /// module are checked against it (tests/it/route_table.rs).
    pub const ALL: &'static [Entry] = &[
        entry("GET", "/v1/health", |_| Route::Health),
        entry("POST", "/v1/credentials", |_| Route::Vend),
        entry("GET", "/v1/profiles", |_| Route::Profiles),
        entry("GET", "/v1/sessions", |_| Route::ListSessions),
        entry("GET", "/v1/sessions/{id}", Route::GetSession),
        entry("POST", "/v1/sessions/{id}/revoke", Route::RevokeSession),
        entry("POST", "/v1/callers/revoke", |_| Route::RevokeCaller),
        entry("POST", "/v1/requests", |_| Route::CreateRequest),
        entry("GET", "/v1/requests", |_| Route::ListRequests),
        entry("GET", "/v1/requests/{id}", Route::GetRequest),
        entry("POST", "/v1/requests/{id}/approve", |id| {
            Route::ActOnRequest(id, RequestAction::Approve)
        }),
        entry("POST", "/v1/requests/{id}/deny", |id| {
            Route::ActOnRequest(id, RequestAction::Deny)
        }),
        entry("POST", "/v1/requests/{id}/cancel", |id| {
            Route::ActOnRequest(id, RequestAction::Cancel)
        }),
        entry("POST", "/v1/breakglass", |_| Route::OpenBreakGlass),
        entry("GET", "/v1/breakglass", |_| Route::ListBreakGlass),
        entry("POST", "/v1/breakglass/{id}/close", Route::CloseBreakGlass),
    ];

    /// The route for a method and path: 404 when no pattern matches the
    /// path, 405 (with the methods it allows) when only the method is wrong.
    pub fn parse(method: &str, path: &str) -> Result<Route, ApiError> {
        let mut allow: Vec<&str> = Vec::new();
        for e in Self::ALL {
            let Some(id) = match_path(e.path, path) else {
                continue;
            };
            if e.method == method {
                return Ok((e.make)(id));
            }
            allow.push(e.method);
        }
        if allow.is_empty() {
            return Err(ApiError::NotFound {
                method: truncate(method, 16),
                path: truncate(path, 128),
            });
        }
        allow.sort_unstable();
        allow.dedup();
        Err(ApiError::MethodNotAllowed {
            allow: allow.join(", "),
        })
    }
}

impl Route {
    /// Does any route have this path (whatever its method)?
    pub fn knows(path: &str) -> bool {
        Self::ALL.iter().any(|e| match_path(e.path, path).is_some())
    }
}

/// `Some(id)` (empty when the pattern has none) when `path` fits `pattern`.
fn match_path(pattern: &str, path: &str) -> Option<String> {
    let mut id = String::new();
    let (mut p, mut s) = (pattern.split('/'), path.split('/'));
    loop {
        match (p.next(), s.next()) {
            (None, None) => return Some(id),
            (Some("{id}"), Some(seg))
                if seg.len() == 32 && seg.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                id = seg.to_string();
            }
            (Some(a), Some(b)) if a == b => {}
            _ => return None,
        }
    }
}

/// The facts the decision line records, as a route reports them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Facts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_source: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<&'static str>,
    /// The approval request or break-glass event that allowed the vend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// STS issued credentials while the gates were checked, and the gates
    /// refused or failed: they were dropped unsent (`session_id` names them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discarded: Option<bool>,
}

impl Facts {
    pub fn decided(decision: &'static str) -> Self {
        Self {
            decision: Some(decision),
            ..Default::default()
        }
    }

    pub fn profile(mut self, profile: &str) -> Self {
        self.profile = Some(profile.to_string());
        self
    }
}

/// A route's answer and what it decided.
pub struct Outcome {
    pub reply: Reply,
    pub facts: Facts,
}

impl Outcome {
    pub fn json(status: u16, body: &impl Serialize, facts: Facts) -> Self {
        Self {
            reply: Reply::json(status, body),
            facts,
        }
    }
}

/// A route's failure and what it knew when it failed (boxed: failures
/// travel through every `?`).
pub struct Failure {
    pub error: ApiError,
    pub facts: Box<Facts>,
}

impl Failure {
    /// A refusal the decision line records as `deny`, with its reason.
    pub fn denied(error: impl Into<ApiError>, reason: impl Into<Option<String>>) -> Self {
        Self {
            error: error.into(),
            facts: Box::new(Facts {
                decision: Some("deny"),
                reason: reason.into(),
                ..Default::default()
            }),
        }
    }

    pub fn in_profile(mut self, profile: &str) -> Self {
        self.facts
            .profile
            .get_or_insert_with(|| profile.to_string());
        self
    }
}

impl<E: Into<ApiError>> From<E> for Failure {
    fn from(e: E) -> Self {
        Self {
            error: e.into(),
            facts: Box::default(),
        }
    }
}

/// `.in_profile(name)?`: a failure after the profile is known names it.
pub trait InProfile<T> {
    fn in_profile(self, profile: &str) -> Result<T, Failure>;
}

impl<T, E: Into<Failure>> InProfile<T> for Result<T, E> {
    fn in_profile(self, profile: &str) -> Result<T, Failure> {
        self.map_err(|e| e.into().in_profile(profile))
    }
}

pub type Handled = Result<Outcome, Failure>;

/// One request as the routes see it: established once, `now` included.
pub struct Call<'a> {
    pub req: &'a http::Request<Body>,
    pub request_id: &'a str,
    pub now: DateTime<Utc>,
    pub caller: Principal,
}

/// How long before Lambda's deadline tvm gives up and answers.
const DEADLINE_MARGIN: Duration = Duration::from_millis(300);

/// The longest an answer waits for the notifications its request started.
const FLUSH_BOUND: Duration = Duration::from_millis(500);

impl App {
    /// One Lambda invocation: any JSON event in, an HTTP response event out.
    /// A payload that is not an API Gateway or function URL event gets a 400.
    /// `deadline`: when Lambda stops the invocation. Retries and waits are
    /// bounded by it: a little before, the answer is 503 and no credentials.
    pub async fn invoke(
        &self,
        event: Value,
        lambda_request_id: &str,
        deadline: Option<SystemTime>,
    ) -> Value {
        // For a malformed event, still answer with API Gateway's id when it has one.
        let request_id = raw_request_id(&event)
            .unwrap_or(lambda_request_id)
            .to_string();
        let started = Instant::now();
        let req = match parse_event(event) {
            Ok(req) => req,
            Err(e) => {
                let err = ApiError::BadRequest(
                    "the event is not an API Gateway or function URL HTTP request".into(),
                );
                let reason = format!("malformed event: {}", truncate(&e, 200));
                return DecisionLog::failed(
                    &self.config.service,
                    &request_id,
                    &err,
                    reason,
                    started,
                )
                .to_event_response();
            }
        };
        let work = self.handle(req, lambda_request_id, started);
        let budget = deadline.map(|d| {
            d.duration_since(SystemTime::now())
                .unwrap_or_default()
                .saturating_sub(DEADLINE_MARGIN)
        });
        let reply = match budget {
            None => work.await,
            Some(budget) => match tokio::time::timeout(budget, work).await {
                Ok(reply) => reply,
                Err(_) => {
                    tracing::error!(request_id = %request_id, dependency = "aws", "the Lambda deadline came before AWS answered; no credentials returned");
                    DecisionLog::failed(
                        &self.config.service,
                        &request_id,
                        &ApiError::OutOfTime,
                        "the Lambda deadline came first".into(),
                        started,
                    )
                }
            },
        };
        // Lambda freezes the environment once it has the answer: what the
        // request announced is published first (bounded, before the deadline).
        let left = deadline.map(|d| {
            d.duration_since(SystemTime::now())
                .unwrap_or_default()
                .saturating_sub(DEADLINE_MARGIN)
        });
        let bound = left.map_or(FLUSH_BOUND, |l| l.min(FLUSH_BOUND));
        // A policy refresh the request started finishes too, or it would
        // resume after the freeze and time out as a failure.
        tokio::join!(
            self.pending.flush(bound),
            self.policies.settle(bound),
            self.identities.settle(bound)
        );
        reply.to_event_response()
    }

    pub async fn handle(
        &self,
        req: http::Request<Body>,
        lambda_request_id: &str,
        started: Instant,
    ) -> Reply {
        let request_id = event::request_id(&req).unwrap_or_else(|| lambda_request_id.to_string());
        let path = event::route_path(&req, Route::knows);
        let log = DecisionLog::new(
            &self.config.service,
            &request_id,
            req.method().as_str(),
            &path,
        );
        let origin = cors::allowed_origin(&req, &self.config.cors_origins);
        let answered = if !self.config.cors_origins.is_empty() && cors::is_preflight(&req) {
            // A preflight carries no identity: it is answered from the
            // configuration alone, and grants nothing by itself.
            match &origin {
                Some(o) if Route::knows(&path) => Ok(Outcome {
                    reply: cors::preflight(o),
                    facts: Facts::decided("preflight"),
                }),
                _ => Err(Failure::denied(
                    ApiError::Forbidden("this origin may not call tvm from a browser".into()),
                    "preflight from an origin not in TVM_CORS_ORIGINS".to_string(),
                )),
            }
        } else {
            self.dispatch(&req, &request_id, &path).await
        };
        let (mut reply, error, facts) = match answered {
            Ok(o) => (o.reply, None, o.facts),
            Err(f) => {
                if let Some(dependency) = f.error.failed_dependency() {
                    let what = match f.error {
                        ApiError::NotRevoked { .. } => {
                            "dependency failed; the revocation is not complete"
                        }
                        _ => "dependency failed; no credentials issued",
                    };
                    tracing::error!(request_id = %request_id, dependency = dependency.as_str(), error = %error_chain(&f.error), "{what}");
                }
                let reply = error_reply(&f.error, &request_id, f.facts.profile.as_deref());
                (reply, Some(f.error), *f.facts)
            }
        };
        if let Some(o) = &origin {
            if reply.status != 204 || facts.decision != Some("preflight") {
                cors::allow(&mut reply, o);
            }
        }
        // The health check is no metric (anyone may call it, and could
        // dilute the 5xx rate): what it would report stays for the next line.
        let measures = (path != "/v1/health").then(|| Measures {
            policy_age: self.policies.age(),
            policy_refresh_failures: self.policies.take_failures(),
            policy_signature_rejections: self.policies.take_rejections(),
        });
        log.finish(&reply, error.as_ref(), facts, started, measures);
        reply
    }

    async fn dispatch(&self, req: &http::Request<Body>, request_id: &str, path: &str) -> Handled {
        let route = Route::parse(req.method().as_str(), path)?;
        if route == Route::Health {
            let health = HealthResponse {
                status: "ok".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            };
            return Ok(Outcome::json(200, &health, Facts::default()));
        }
        check_body_size(req)?;
        // Identity first: an unauthenticated caller learns nothing of the routes' rules.
        let (caller, source) = match self.identities.caller(req, Utc::now()).await {
            Ok(found) => found,
            Err((failure, source)) => {
                let mut f = Failure::from(failure);
                f.facts.identity_source = source;
                return Err(f);
            }
        };
        // The request's one `now`, read once the caller is known (identity may
        // have waited on STS): every decision and record of the request uses it.
        let now = Utc::now();
        let who = |facts: &mut Facts| {
            facts.caller = Some(caller.arn.clone());
            facts.account = Some(caller.account.clone());
            facts.identity_source = Some(source);
        };
        let config = &self.config;
        if let Err(e) = admit(&config.allowed_accounts, &config.allowed_org_ids, &caller) {
            let mut f = Failure::denied(ApiError::AccessDenied, e.to_string());
            who(&mut f.facts);
            return Err(f);
        }
        // A session of a role tvm vends may vend again only where a rule says
        // so (the vend's decision checks that); it never approves, opens
        // break-glass, revokes or lists: its authority would outlive the
        // revocation of the session it came from.
        if !matches!(route, Route::Vend | Route::Profiles) {
            // Also a session named after a vend on record, whatever its role:
            // a profile gone from the set (its parameter deleted, or refused
            // for its signature) does not turn its sessions into people.
            let vended = match self.policies.get().await {
                Ok(set) if set.vended(&caller) => Ok(true),
                Ok(_) => self.recorded_vend(&caller).await.map(|r| r.is_some()),
                Err(e) => Err(e),
            };
            let vended = match vended {
                Ok(v) => v,
                Err(e) => {
                    let mut f = Failure::from(e);
                    who(&mut f.facts);
                    return Err(f);
                }
            };
            if vended {
                let mut f = Failure::denied(
                    ApiError::AccessDenied,
                    "a session of a role tvm vends may only vend, where a rule allows vended sessions".to_string(),
                );
                who(&mut f.facts);
                return Err(f);
            }
        }
        let call = Call {
            req,
            request_id,
            now,
            caller: caller.clone(),
        };
        let handled = match route {
            Route::Health => unreachable!("answered above"),
            Route::Vend => self.vend(&call).await,
            Route::Profiles => self.profiles(&call).await,
            Route::ListSessions => self.list_sessions(&call).await,
            Route::GetSession(id) => self.get_session(&call, &id).await,
            Route::RevokeSession(id) => self.revoke_session(&call, &id).await,
            Route::RevokeCaller => self.revoke_caller(&call).await,
            Route::CreateRequest => self.create_request(&call).await,
            Route::ListRequests => self.list_requests(&call).await,
            Route::GetRequest(id) => self.get_request(&call, &id).await,
            Route::ActOnRequest(id, action) => self.act_on_request(&call, &id, action).await,
            Route::OpenBreakGlass => self.open_break_glass(&call).await,
            Route::ListBreakGlass => self.list_break_glass(&call).await,
            Route::CloseBreakGlass(id) => self.close_break_glass(&call, &id).await,
        };
        match handled {
            Ok(mut o) => {
                who(&mut o.facts);
                Ok(o)
            }
            Err(mut f) => {
                who(&mut f.facts);
                Err(f)
            }
        }
    }
}

/// The error answer: status, stable code, message, and the headers some
/// answers need (`Retry-After` for 429, `Allow` for 405).
pub(crate) fn error_reply(e: &ApiError, request_id: &str, profile: Option<&str>) -> Reply {
    let (status, code, message) = e.answer(profile);
    let approval_request_id = match e {
        ApiError::ApprovalRequired { request_id } => request_id.clone(),
        _ => None,
    };
    let mut reply = Reply::json(
        status,
        &ErrorBody {
            code,
            message,
            request_id: request_id.to_string(),
            approval_request_id,
        },
    );
    match e {
        ApiError::RateLimited { retry_after } => {
            reply.headers.push(("retry-after", retry_after.to_string()))
        }
        ApiError::MethodNotAllowed { allow } => reply.headers.push(("allow", allow.clone())),
        _ => {}
    }
    reply
}

/// A fresh id for a request, event or session: 32 lowercase hex.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod flows;
#[cfg(test)]
mod tests;
