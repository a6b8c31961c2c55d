//! The handler: event in, routed request, one decision log line, response out.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{SecondsFormat, Utc};
use lambda_http::request::{LambdaRequest, RequestContext};
use lambda_http::{Body, RequestExt};
use serde::Serialize;
use serde_json::{json, Value};
use tvm_core::api::{
    CredentialsRequest, CredentialsResponse, ErrorBody, HealthResponse, Notification, ProfileEntry,
    ProfilesResponse, RevocationResponse, RevokeCallerRequest, RevokeSessionRequest, SessionView,
    SessionsResponse, IDENTITY_HEADER, MAX_BODY_BYTES,
};
use tvm_core::decision::{access, decide, match_rules, Denial, GateState, VendRequest};
use tvm_core::limits::keys;
use tvm_core::policy::{valid_profile_name, PolicySet};
use tvm_core::principal::Principal;
use tvm_core::render::{caller_vars, render, role_session_name, source_identity};
use tvm_core::revocation::Revoked;

use crate::aws::gates::GateStore;
use crate::aws::{
    AssumeSpec, Gates, IdentityVerifier, Issuer, Notifier, RevocationMarker, RoleRevocations,
    SessionQuery, SessionRecord, SessionStore, VerifyError,
};
use crate::config::Config;
use crate::error::{error_chain, ApiError};
use crate::identity::{self, check_presigned, PresignRules};
use crate::policies::PolicyCache;

/// Everything the handler needs, built once at cold start.
pub struct App {
    pub config: Config,
    pub policies: Arc<PolicyCache>,
    pub sessions: Arc<dyn SessionStore>,
    pub issuer: Arc<dyn Issuer>,
    /// Present when the `sts` identity mode is on.
    pub verifier: Option<Arc<dyn IdentityVerifier>>,
    /// `host[:port]` presigned identities must be signed for.
    pub sts_authority: String,
    pub revocations: Arc<dyn RoleRevocations>,
    pub gates: Arc<dyn GateStore>,
    /// Present when `TVM_NOTIFY_TOPIC_ARN` is set.
    pub notifier: Option<Arc<dyn Notifier>>,
}

/// An HTTP answer in the shape API Gateway (v1 and v2) and function URLs accept.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Reply {
    fn json(status: u16, body: &impl Serialize) -> Self {
        Self {
            status,
            headers: vec![
                ("content-type", "application/json".into()),
                ("cache-control", "no-store".into()),
            ],
            body: serde_json::to_string(body).unwrap_or_else(|_| "{}".into()),
        }
    }

    pub fn to_event_response(&self) -> Value {
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
            .collect();
        json!({
            "statusCode": self.status,
            "headers": headers,
            "body": self.body,
            "isBase64Encoded": false,
        })
    }
}

/// The one machine-readable line every request leaves in the log.
#[derive(Debug, Default, Serialize)]
pub struct DecisionLog {
    #[serde(rename = "type")]
    kind: &'static str,
    request_id: String,
    method: String,
    path: String,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    caller: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity_source: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    via: Option<&'static str>,
    /// The approval request or break-glass event that allowed the vend.
    #[serde(skip_serializing_if = "Option::is_none")]
    via_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    latency_ms: f64,
}

impl App {
    /// One Lambda invocation: any JSON event in, an HTTP response event out.
    /// A payload that is not an API Gateway or function URL event gets a 400.
    /// `deadline`: when Lambda stops the invocation. Retries and waits are
    /// bounded by it: a little before, the answer is 503 and no credentials.
    pub async fn invoke(
        &self,
        event: Value,
        lambda_request_id: &str,
        deadline: Option<std::time::SystemTime>,
    ) -> Value {
        // For a malformed event, still answer with API Gateway's id when it has one.
        let request_id = event
            .pointer("/requestContext/requestId")
            .and_then(Value::as_str)
            .filter(|id| {
                !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_graphic())
            })
            .unwrap_or(lambda_request_id)
            .to_string();
        let started = Instant::now();
        match parse_event(event) {
            Ok(req) => {
                let budget = deadline.map(|d| {
                    d.duration_since(std::time::SystemTime::now())
                        .unwrap_or_default()
                        .saturating_sub(DEADLINE_MARGIN)
                });
                let work = self.handle(req, lambda_request_id, started);
                match budget {
                    None => work.await,
                    Some(budget) => match tokio::time::timeout(budget, work).await {
                        Ok(reply) => reply,
                        Err(_) => out_of_time(&request_id, started),
                    },
                }
            }
            Err(e) => {
                let mut log = DecisionLog {
                    kind: "decision",
                    request_id: request_id.clone(),
                    reason: Some(format!(
                        "malformed event: {}",
                        truncate(&e.to_string(), 200)
                    )),
                    ..Default::default()
                };
                let err = ApiError::BadRequest(
                    "the event is not an API Gateway or function URL HTTP request".into(),
                );
                let reply = error_reply(&err, &request_id, None);
                log.status = reply.status;
                log.code = Some(err.answer(None).1.as_str());
                log.latency_ms = ms(started);
                emit(&log);
                reply
            }
        }
        .to_event_response()
    }

    pub async fn handle(
        &self,
        req: http::Request<Body>,
        lambda_request_id: &str,
        started: Instant,
    ) -> Reply {
        let ctx = req.request_context_ref();
        let request_id = apigw_request_id(ctx).unwrap_or_else(|| lambda_request_id.to_string());
        let path = route_path(&req);
        let mut log = DecisionLog {
            kind: "decision",
            request_id: request_id.clone(),
            method: req.method().to_string(),
            path: truncate(&path, 128),
            ..Default::default()
        };
        let method = req.method().clone();
        let result = match (method.as_str(), path.as_str()) {
            ("GET", "/v1/health") => Ok(Reply::json(
                200,
                &HealthResponse {
                    status: "ok".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                },
            )),
            ("POST", "/v1/credentials") => self.vend(&req, &request_id, &mut log).await,
            ("GET", "/v1/profiles") => self.profiles(&req, &mut log).await,
            ("GET", "/v1/sessions") => self.list_sessions(&req, &mut log).await,
            ("POST", "/v1/requests") => self.create_request(&req, &mut log).await,
            ("GET", "/v1/requests") => self.list_requests(&req, &mut log).await,
            ("POST", "/v1/breakglass") => self.open_break_glass(&req, &mut log).await,
            ("GET", "/v1/breakglass") => self.list_break_glass(&req, &mut log).await,
            (m, p) if with_id(p, "/v1/requests/").is_some() => {
                let (id, action) = with_id(p, "/v1/requests/").unwrap_or_default();
                match (m, action) {
                    ("GET", None) => self.get_request(&req, id, &mut log).await,
                    ("POST", Some("approve")) => {
                        self.act_on_request(&req, id, RequestAction::Approve, &mut log)
                            .await
                    }
                    ("POST", Some("deny")) => {
                        self.act_on_request(&req, id, RequestAction::Deny, &mut log)
                            .await
                    }
                    ("POST", Some("cancel")) => {
                        self.act_on_request(&req, id, RequestAction::Cancel, &mut log)
                            .await
                    }
                    _ => Err(ApiError::NotFound {
                        method: m.to_string(),
                        path: truncate(p, 128),
                    }),
                }
            }
            ("POST", p)
                if with_id(p, "/v1/breakglass/").is_some_and(|(_, a)| a == Some("close")) =>
            {
                let (id, _) = with_id(p, "/v1/breakglass/").unwrap_or_default();
                self.close_break_glass(&req, id, &mut log).await
            }
            ("POST", "/v1/callers/revoke") => self.revoke_caller(&req, &mut log).await,
            ("POST", p) if session_to_revoke(p).is_some() => {
                let id = session_to_revoke(p).unwrap_or_default().to_string();
                self.revoke_session(&req, &id, &mut log).await
            }
            (
                _,
                "/v1/health" | "/v1/credentials" | "/v1/profiles" | "/v1/sessions"
                | "/v1/callers/revoke" | "/v1/requests" | "/v1/breakglass",
            ) => Err(ApiError::MethodNotAllowed),
            _ => Err(ApiError::NotFound {
                method: method.to_string(),
                path: truncate(&path, 128),
            }),
        };
        let reply = match result {
            Ok(reply) => reply,
            Err(e) => {
                let (_, code, _) = e.answer(None);
                log.code = Some(code.as_str());
                if log.decision.is_none() {
                    log.decision = Some("error");
                }
                if let ApiError::Dependency { dependency, .. } = &e {
                    tracing::error!(request_id = %request_id, dependency = dependency.as_str(), error = %error_chain(&e), "dependency failed; no credentials issued");
                }
                if log.reason.is_none() {
                    log.reason = Some(truncate(&e.to_string(), 300));
                }
                error_reply(&e, &request_id, log.profile.as_deref())
            }
        };
        log.status = reply.status;
        log.latency_ms = ms(started);
        emit(&log);
        reply
    }

    async fn caller(
        &self,
        req: &http::Request<Body>,
        log: &mut DecisionLog,
    ) -> Result<Principal, ApiError> {
        let modes = self.config.identity_modes;
        let unauth = |e: identity::IdentityError| ApiError::Unauthenticated(e.to_string());
        let mut found = None;
        if modes.apigw {
            if let Some(p) = identity::from_context(req.request_context_ref()).map_err(unauth)? {
                log.identity_source = Some("apigw");
                found = Some(p);
            }
        }
        if found.is_none() && modes.sts {
            let mut values = req.headers().get_all(IDENTITY_HEADER).iter();
            if let Some(value) = values.next() {
                if values.next().is_some() {
                    return Err(unauth(identity::IdentityError::Presigned(
                        "sent more than once",
                    )));
                }
                let value = value
                    .to_str()
                    .map_err(|_| unauth(identity::IdentityError::Presigned("not ASCII")))?;
                let rules = PresignRules {
                    server_id: self.config.server_id.as_deref().unwrap_or_default(),
                    sts_authority: &self.sts_authority,
                };
                let checked = check_presigned(value, &rules, Utc::now()).map_err(unauth)?;
                let verifier = self
                    .verifier
                    .as_ref()
                    .ok_or_else(|| unauth(identity::IdentityError::Missing))?;
                log.identity_source = Some("sts");
                found = Some(verifier.verify(checked).await.map_err(|e| match e {
                    VerifyError::Refused(e) => unauth(e),
                    VerifyError::Dependency(e) => e,
                })?);
            }
        }
        let caller = found.ok_or_else(|| unauth(identity::IdentityError::Missing))?;
        log.caller = Some(caller.arn.clone());
        log.account = Some(caller.account.clone());
        self.admit(&caller, log)?;
        Ok(caller)
    }

    /// `TVM_ALLOWED_ACCOUNTS` / `TVM_ALLOWED_ORG_IDS` bound who is evaluated at all.
    fn admit(&self, caller: &Principal, log: &mut DecisionLog) -> Result<(), ApiError> {
        let accounts = &self.config.allowed_accounts;
        let orgs = &self.config.allowed_org_ids;
        if !accounts.is_empty() && !accounts.contains(&caller.account) {
            log.reason = Some("account not in TVM_ALLOWED_ACCOUNTS".into());
            log.decision = Some("deny");
            return Err(ApiError::AccessDenied);
        }
        if !orgs.is_empty() && !caller.org_id.as_ref().is_some_and(|o| orgs.contains(o)) {
            log.reason = Some(
                "organization not in TVM_ALLOWED_ORG_IDS (or unknown to this identity mode)".into(),
            );
            log.decision = Some("deny");
            return Err(ApiError::AccessDenied);
        }
        Ok(())
    }

    async fn profiles(
        &self,
        req: &http::Request<Body>,
        log: &mut DecisionLog,
    ) -> Result<Reply, ApiError> {
        let caller = self.caller(req, log).await?;
        let set = self.policies.get().await?;
        let now = Utc::now();
        let profiles = set
            .profiles()
            .filter_map(|p| {
                access(p, &caller, now).map(|a| ProfileEntry {
                    profile: p.name.clone(),
                    role_arn: p.role_arn.to_string(),
                    access: a,
                    default_duration: p.default_duration,
                    max_duration: p.max_duration,
                    description: p.description.clone(),
                })
            })
            .collect();
        Ok(Reply::json(
            200,
            &ProfilesResponse {
                caller: caller.arn,
                profiles,
            },
        ))
    }

    async fn vend(
        &self,
        req: &http::Request<Body>,
        request_id: &str,
        log: &mut DecisionLog,
    ) -> Result<Reply, ApiError> {
        let body: &[u8] = req.body().as_ref();
        if body.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES));
        }
        // Identity first: an unauthenticated caller learns nothing about the body rules.
        let caller = self.caller(req, log).await?;
        let ask: CredentialsRequest = serde_json::from_slice(body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the body must be JSON {{\"profile\": NAME, \"duration_seconds\"?: 900..3600, \"attributes\"?: {{...}}}}: {}",
                truncate(&e.to_string(), 160)
            ))
        })?;
        if !valid_profile_name(&ask.profile) {
            return Err(ApiError::BadRequest(
                "profile must be 1-64 letters, digits, '-', '_' or '.'".into(),
            ));
        }
        log.profile = Some(ask.profile.clone());
        let set = self.policies.get().await?;
        let now = Utc::now();
        let request = VendRequest {
            profile: ask.profile,
            duration_seconds: ask.duration_seconds,
            attributes: ask.attributes,
        };
        // Approval and break-glass state is read only when they could matter.
        let state = match set.get(&request.profile) {
            Some(profile) => {
                let m = match_rules(profile, &caller, now);
                let gated = m.approval.is_some() || m.break_glass.is_some();
                if m.deny.is_none() && m.allow.is_none() && gated {
                    self.gates
                        .state(&caller.stable_id(), &profile.name, now.timestamp())
                        .await?
                } else {
                    GateState::default()
                }
            }
            None => GateState::default(),
        };
        let grant = match decide(&set, &caller, &request, &state, now) {
            Ok(grant) => grant,
            Err(d) => {
                log.decision = Some("deny");
                log.rule = d.rule().map(str::to_string);
                log.reason = Some(d.to_string());
                return Err(match d {
                    Denial::UnknownProfile
                    | Denial::Denied { .. }
                    | Denial::NoMatchingRule
                    | Denial::BreakGlassRequired { .. } => ApiError::AccessDenied,
                    Denial::ApprovalRequired { .. } => {
                        let profile = set.get(&request.profile).ok_or(ApiError::AccessDenied)?;
                        // Off the vend's path: the notification is not awaited.
                        let id = self
                            .pending_request(&caller, profile, request.duration_seconds, "", false)
                            .await?;
                        ApiError::ApprovalRequired {
                            request_id: Some(id),
                        }
                    }
                    Denial::BadDuration | Denial::BadAttribute { .. } => {
                        ApiError::BadRequest(d.to_string())
                    }
                    Denial::Unbindable { .. } => {
                        ApiError::PolicyInvalid(format!("profile {}: {d}", request.profile))
                    }
                });
            }
        };
        log.rule = Some(grant.rule.name.clone());
        log.via = Some(grant.via.kind());
        log.via_id = grant.via.id().map(str::to_string);
        log.duration_seconds = Some(grant.duration_seconds);

        let session_id = uuid::Uuid::new_v4().simple().to_string();
        let mut vars = caller_vars(&caller);
        vars.extend(&grant.bindings);
        // Both are whitelisted by construction; a failure here is a bug, refused.
        vars.insert("profile", &grant.profile.name)
            .and_then(|_| vars.insert("session_id", &session_id))
            .map_err(|e| ApiError::PolicyInvalid(e.to_string()))?;
        let rendered = render(grant.profile, &vars)
            .map_err(|e| ApiError::PolicyInvalid(format!("profile {}: {e}", grant.profile.name)))?;
        let source_identity = source_identity(&session_id)
            .ok_or_else(|| ApiError::PolicyInvalid("could not build a SourceIdentity".into()))?;
        let issued_at = now;
        let expires_at = issued_at + chrono::Duration::seconds(i64::from(grant.duration_seconds));
        let record = SessionRecord {
            session_id: session_id.clone(),
            request_id: request_id.to_string(),
            caller_arn: caller.arn.clone(),
            caller: caller.stable_id(),
            account: caller.account.clone(),
            profile: grant.profile.name.clone(),
            role_arn: grant.profile.role_arn.to_string(),
            rule: grant.rule.name.clone(),
            via: grant.via.clone(),
            duration_seconds: grant.duration_seconds,
            issued_at,
            expires_at,
            source_identity: source_identity.as_str().to_string(),
            delete_after: expires_at
                + chrono::Duration::from_std(self.config.session_retention).unwrap_or_default(),
        };
        log.session_id = Some(session_id.clone());
        // The record first, in one transaction with the revocation and rate
        // gates: no credentials ever leave without a session item.
        let gates = Gates {
            rate_limit: grant.profile.rate_limit.unwrap_or(self.config.rate_limit),
            now: now.timestamp(),
        };
        self.sessions.record(&record, gates).await?;
        let spec = AssumeSpec {
            role_arn: record.role_arn.clone(),
            role_session_name: role_session_name(&caller, &session_id).as_str().to_string(),
            source_identity: record.source_identity.clone(),
            duration_seconds: grant.duration_seconds,
            policy: rendered.policy,
            tags: rendered.tags,
        };
        let issued = match self.issuer.assume(&spec).await {
            Ok(issued) => issued,
            Err(e) => {
                if let Err(mark) = self.sessions.set_status(&session_id, "failed").await {
                    tracing::warn!(session_id = %session_id, error = %error_chain(&mark), "could not mark the session as failed");
                }
                return Err(e);
            }
        };
        log.decision = Some("allow");
        Ok(Reply::json(
            200,
            &CredentialsResponse {
                version: 1,
                access_key_id: issued.access_key_id,
                secret_access_key: issued.secret_access_key,
                session_token: issued.session_token,
                expiration: issued.expiration.to_rfc3339_opts(SecondsFormat::Secs, true),
                session_id,
                profile: record.profile,
                role_arn: record.role_arn,
            },
        ))
    }
}

/// Sessions and revocation: `GET /v1/sessions`, `POST /v1/sessions/{id}/revoke`,
/// `POST /v1/callers/revoke`.
impl App {
    fn is_admin(&self, caller: &Principal) -> bool {
        self.config.admins.iter().any(|g| g.matches(&caller.arn))
    }

    /// Admins manage every profile; approvers manage theirs.
    fn manages(&self, set: &PolicySet, caller: &Principal, profile: &str) -> bool {
        self.is_admin(caller)
            || set
                .get(profile)
                .and_then(|p| p.approval.as_ref())
                .is_some_and(|a| a.approvers.iter().any(|g| g.matches(&caller.arn)))
    }

    async fn list_sessions(
        &self,
        req: &http::Request<Body>,
        log: &mut DecisionLog,
    ) -> Result<Reply, ApiError> {
        let caller = self.caller(req, log).await?;
        let q = req.query_string_parameters_ref();
        let param = |k: &str| q.and_then(|q| q.first(k)).map(str::to_string);
        let limit = match param("limit") {
            None => 50,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=1000).contains(l))
                .ok_or_else(|| ApiError::BadRequest("limit must be 1..1000".into()))?,
        };
        let active = param("active").as_deref() == Some("true");
        let query = match (param("caller"), param("profile")) {
            (Some(_), Some(_)) => {
                return Err(ApiError::BadRequest(
                    "filter by caller or by profile, not both".into(),
                ))
            }
            (None, Some(profile)) => {
                let set = self.policies.get().await?;
                if !self.manages(&set, &caller, &profile) {
                    log.decision = Some("deny");
                    return Err(ApiError::AccessDenied);
                }
                SessionQuery::Profile { profile, limit }
            }
            (Some(who), None) => {
                let who = stable_principal(&who)?;
                if who != caller.stable_id() && !self.is_admin(&caller) {
                    log.decision = Some("deny");
                    return Err(ApiError::AccessDenied);
                }
                SessionQuery::Caller { caller: who, limit }
            }
            (None, None) => SessionQuery::Caller {
                caller: caller.stable_id(),
                limit,
            },
        };
        let now = Utc::now().timestamp();
        let sessions = self
            .sessions
            .list(&query)
            .await?
            .into_iter()
            .filter(|s| !active || (s.status == "issued" && s.expires_at > now))
            .collect();
        Ok(Reply::json(200, &SessionsResponse { sessions }))
    }

    async fn revoke_session(
        &self,
        req: &http::Request<Body>,
        id: &str,
        log: &mut DecisionLog,
    ) -> Result<Reply, ApiError> {
        let caller = self.caller(req, log).await?;
        let ask: RevokeSessionRequest = body_json(req)?;
        let (reason, seconds) = revocation_terms(&ask.reason, ask.duration_seconds)?;
        let set = self.policies.get().await?;
        let not_found = || ApiError::Missing(format!("no session {id}"));
        let session = self.sessions.get(id).await?.ok_or_else(not_found)?;
        // A session the caller may not manage answers like one that does not exist.
        if !self.manages(&set, &caller, &session.profile) {
            log.decision = Some("deny");
            return Err(not_found());
        }
        log.profile = Some(session.profile.clone());
        let now = Utc::now().timestamp();
        let until = now + i64::from(seconds);
        self.sessions
            .revoke(&RevocationMarker {
                key: keys::revoked_pair(&session.caller, &session.profile),
                until,
                by: caller.arn.clone(),
                reason,
                at: now,
            })
            .await?;
        self.sessions
            .set_status(&session.session_id, "revoked")
            .await?;
        let revoked = vec![Revoked {
            source_identity: session.source_identity.clone(),
            expires_at: session.expires_at,
        }];
        self.revocations
            .deny(&session.role_arn, &revoked, now)
            .await?;
        log.decision = Some("revoke");
        log.session_id = Some(session.session_id.clone());
        let details =
            json!({"reason": ask.reason.trim(), "until": until, "role_arn": session.role_arn});
        self.announce(
            notification(
                "session.revoked",
                &caller,
                &session.caller,
                Some(&session.profile),
                Some(&session.session_id),
                details,
            ),
            true,
        )
        .await;
        Ok(Reply::json(
            200,
            &RevocationResponse {
                caller: session.caller,
                profile: Some(session.profile),
                until,
                sessions_revoked: vec![session.session_id],
            },
        ))
    }

    async fn revoke_caller(
        &self,
        req: &http::Request<Body>,
        log: &mut DecisionLog,
    ) -> Result<Reply, ApiError> {
        let caller = self.caller(req, log).await?;
        if !self.is_admin(&caller) {
            log.decision = Some("deny");
            return Err(ApiError::AccessDenied);
        }
        let ask: RevokeCallerRequest = body_json(req)?;
        let (reason, seconds) = revocation_terms(&ask.reason, ask.duration_seconds)?;
        let target = stable_principal(&ask.principal)?;
        let now = Utc::now().timestamp();
        let until = now + i64::from(seconds);
        self.sessions
            .revoke(&RevocationMarker {
                key: keys::revoked_caller(&target),
                until,
                by: caller.arn.clone(),
                reason,
                at: now,
            })
            .await?;
        let live: Vec<SessionView> = self
            .sessions
            .list(&SessionQuery::Caller {
                caller: target.clone(),
                limit: 1000,
            })
            .await?
            .into_iter()
            .filter(|s| s.status == "issued" && s.expires_at > now)
            .collect();
        let mut by_role: BTreeMap<&str, Vec<Revoked>> = BTreeMap::new();
        for s in &live {
            by_role.entry(&s.role_arn).or_default().push(Revoked {
                source_identity: s.source_identity.clone(),
                expires_at: s.expires_at,
            });
        }
        for (role, revoked) in &by_role {
            self.revocations.deny(role, revoked, now).await?;
        }
        for s in &live {
            self.sessions.set_status(&s.session_id, "revoked").await?;
        }
        log.decision = Some("revoke");
        let details = json!({"reason": ask.reason.trim(), "until": until, "sessions": live.len()});
        self.announce(
            notification("caller.revoked", &caller, &target, None, None, details),
            true,
        )
        .await;
        Ok(Reply::json(
            200,
            &RevocationResponse {
                caller: target,
                profile: None,
                until,
                sessions_revoked: live.into_iter().map(|s| s.session_id).collect(),
            },
        ))
    }
}

/// An API Gateway (REST v1, HTTP API v2) or function URL event as an HTTP
/// request, or why not. lambda_http's conversion unwraps URL parsing of the
/// host, path and X-Forwarded-Proto it is given (found by fuzzing): a panic
/// there is a malformed event like any other.
pub fn parse_event(event: Value) -> Result<http::Request<Body>, String> {
    let lr = serde_json::from_value::<LambdaRequest>(event).map_err(|e| e.to_string())?;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| http::Request::from(lr)))
        .map_err(|_| "the event's host, path or scheme is not a URL".to_string())
}

/// How long before Lambda's deadline tvm gives up and answers.
const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_millis(300);

/// The invocation's time ran out waiting for AWS: no credentials.
fn out_of_time(request_id: &str, started: Instant) -> Reply {
    let err = ApiError::OutOfTime;
    tracing::error!(request_id = %request_id, dependency = "aws", "the Lambda deadline came before AWS answered; no credentials issued");
    let reply = error_reply(&err, request_id, None);
    emit(&DecisionLog {
        kind: "decision",
        request_id: request_id.to_string(),
        status: reply.status,
        code: Some(err.answer(None).1.as_str()),
        decision: Some("error"),
        reason: Some("the Lambda deadline came first".into()),
        latency_ms: ms(started),
        ..Default::default()
    });
    reply
}

/// The announcement of a state change.
pub(crate) fn notification(
    kind: &str,
    actor: &Principal,
    subject: &str,
    profile: Option<&str>,
    id: Option<&str>,
    details: Value,
) -> Notification {
    Notification {
        version: 1,
        kind: kind.to_string(),
        at: Utc::now().timestamp(),
        actor: actor.arn.clone(),
        subject: subject.to_string(),
        profile: profile.map(str::to_string),
        id: id.map(str::to_string),
        details: match details {
            Value::Object(m) => m,
            _ => Default::default(),
        },
    }
}

impl App {
    /// Publish after the state change is stored; a failure is logged, never
    /// undoes it or fails the request. `wait: false` keeps it off the
    /// caller's path entirely (the vend path).
    pub(crate) async fn announce(&self, n: Notification, wait: bool) {
        let Some(notifier) = self.notifier.clone() else {
            return;
        };
        let publish = async move {
            let result =
                tokio::time::timeout(std::time::Duration::from_secs(2), notifier.publish(&n)).await;
            let failure = match result {
                Ok(Ok(())) => return,
                Ok(Err(e)) => error_chain(&e),
                Err(_) => "timed out".to_string(),
            };
            tracing::error!(dependency = "sns", kind = %n.kind, error = %failure, "notification not published; the state change stands");
        };
        if wait {
            publish.await;
        } else {
            tokio::spawn(publish);
        }
    }
}

/// Parse a JSON body, refusing oversized or malformed ones with what to fix.
fn body_json<T: serde::de::DeserializeOwned>(req: &http::Request<Body>) -> Result<T, ApiError> {
    let body: &[u8] = req.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!("invalid body: {}", truncate(&e.to_string(), 160)))
    })
}

/// A reason of 3-500 characters; a duration of 60 s to 30 days (default 1 h).
fn revocation_terms(reason: &str, seconds: Option<u32>) -> Result<(String, u32), ApiError> {
    let reason = reason.trim();
    if !(3..=500).contains(&reason.chars().count()) || reason.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "reason must be 3-500 characters without control characters".into(),
        ));
    }
    let seconds = seconds.unwrap_or(3600);
    if !(60..=30 * 86_400).contains(&seconds) {
        return Err(ApiError::BadRequest(
            "duration_seconds must be between 60 and 2592000".into(),
        ));
    }
    Ok((reason.to_string(), seconds))
}

/// The principal a revocation or listing is about: the role or user, from a
/// caller ARN, a user ARN or a role ARN (paths dropped, as STS drops them).
fn stable_principal(arn: &str) -> Result<String, ApiError> {
    if let Ok(p) = Principal::parse(arn, None) {
        return Ok(p.stable_id());
    }
    if let Ok(role) = tvm_core::policy::RoleArn::parse(arn) {
        let s = role.as_str();
        let (head, path) = s.split_once(":role/").unwrap_or((s, ""));
        let name = path.rsplit('/').next().unwrap_or(path);
        return Ok(format!("{head}:role/{name}"));
    }
    Err(ApiError::BadRequest(
        "principal must be a caller, user or role ARN, e.g. arn:aws:iam::111122223333:role/orders-task".into(),
    ))
}

/// `PREFIX{id}` or `PREFIX{id}/{action}` -> the id (32 hex) and the action.
fn with_id<'a>(path: &'a str, prefix: &str) -> Option<(&'a str, Option<&'a str>)> {
    let rest = path.strip_prefix(prefix)?;
    let (id, action) = match rest.split_once('/') {
        Some((id, action)) => (id, Some(action)),
        None => (rest, None),
    };
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some((id, action))
}

/// `/v1/sessions/{id}/revoke` -> the id, if well formed.
fn session_to_revoke(path: &str) -> Option<&str> {
    let id = path
        .strip_prefix("/v1/sessions/")?
        .strip_suffix("/revoke")?;
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

fn error_reply(e: &ApiError, request_id: &str, profile: Option<&str>) -> Reply {
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
    if let ApiError::RateLimited { retry_after } = e {
        reply.headers.push(("retry-after", retry_after.to_string()));
    }
    reply
}

fn apigw_request_id(ctx: Option<&RequestContext>) -> Option<String> {
    match ctx? {
        RequestContext::ApiGatewayV1(c) => c.request_id.clone(),
        RequestContext::ApiGatewayV2(c) => c.request_id.clone(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
    .filter(|id| !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_graphic()))
}

/// The path the routes see: without the stage prefix API Gateway adds for
/// named stages.
fn route_path(req: &http::Request<Body>) -> String {
    let path = req.uri().path();
    let stage = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(c)) => c.stage.clone(),
        Some(RequestContext::ApiGatewayV2(c)) => c.stage.clone(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
    .filter(|s| !s.is_empty() && s != "$default");
    if let Some(stage) = stage {
        if let Some(rest) = path.strip_prefix(&format!("/{stage}")) {
            if rest.starts_with('/') {
                return rest.to_string();
            }
        }
    }
    path.to_string()
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn ms(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

fn emit(log: &DecisionLog) {
    if let Ok(line) = serde_json::to_string(log) {
        println!("{line}");
    }
}

mod approvals;
#[cfg(test)]
mod tests;

use approvals::RequestAction;
