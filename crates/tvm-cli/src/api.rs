//! The typed routes behind the commands for people: approval requests,
//! break-glass, sessions and revocation, over the API (never writing DynamoDB
//! directly). How the answers are shown is the `tvm` binary's business.

use serde_json::json;
use tvm_core::api::{
    BreakGlassList, BreakGlassView, RequestView, RequestsResponse, RevocationResponse, SessionView,
    SessionsResponse,
};

use crate::client::{query_value, ClientError, TvmClient};

/// The calls behind the commands.
pub struct Api<'a>(pub &'a TvmClient);

impl Api<'_> {
    pub async fn create_request(
        &self,
        profile: &str,
        justification: &str,
        duration: Option<u32>,
        attributes: &std::collections::BTreeMap<String, String>,
    ) -> Result<RequestView, ClientError> {
        let body = json!({"profile": profile, "justification": justification, "duration_seconds": duration, "attributes": attributes});
        self.0.json("POST", "/v1/requests", Some(&body)).await
    }

    pub async fn requests(&self, status: &str) -> Result<RequestsResponse, ClientError> {
        self.0
            .json(
                "GET",
                &format!("/v1/requests?status={}", query_value(status)),
                None,
            )
            .await
    }

    pub async fn act(&self, id: &str, action: &str) -> Result<RequestView, ClientError> {
        self.0
            .json(
                "POST",
                &format!("/v1/requests/{id}/{action}"),
                Some(&json!({})),
            )
            .await
    }

    pub async fn open_break_glass(
        &self,
        profile: &str,
        reason: &str,
        justification: &str,
        duration: Option<u32>,
    ) -> Result<BreakGlassView, ClientError> {
        let body = json!({"profile": profile, "reason": reason, "justification": justification, "duration_seconds": duration});
        self.0.json("POST", "/v1/breakglass", Some(&body)).await
    }

    pub async fn break_glass(&self) -> Result<BreakGlassList, ClientError> {
        self.0.json("GET", "/v1/breakglass", None).await
    }

    pub async fn close_break_glass(&self, id: &str) -> Result<BreakGlassView, ClientError> {
        self.0
            .json(
                "POST",
                &format!("/v1/breakglass/{id}/close"),
                Some(&json!({})),
            )
            .await
    }

    pub async fn sessions(
        &self,
        caller: Option<&str>,
        profile: Option<&str>,
        active: bool,
    ) -> Result<SessionsResponse, ClientError> {
        let mut q: Vec<String> = Vec::new();
        if let Some(c) = caller {
            q.push(format!("caller={}", query_value(c)));
        }
        if let Some(p) = profile {
            q.push(format!("profile={}", query_value(p)));
        }
        if active {
            q.push("active=true".into());
        }
        let path = if q.is_empty() {
            "/v1/sessions".to_string()
        } else {
            format!("/v1/sessions?{}", q.join("&"))
        };
        self.0.json("GET", &path, None).await
    }

    /// One session; none when tvm has no such record (or hides it: `404`).
    pub async fn session(&self, id: &str) -> Result<Option<SessionView>, ClientError> {
        let path = format!("/v1/sessions/{}", query_value(id));
        match self.0.json("GET", &path, None).await {
            Ok(s) => Ok(Some(s)),
            Err(ClientError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every session revoked at or after `since` (security team), newest
    /// first, at most `limit`.
    pub async fn revoked_sessions(
        &self,
        since: i64,
        limit: usize,
    ) -> Result<SessionsResponse, ClientError> {
        let path = format!("/v1/sessions?revoked_since={since}&limit={limit}");
        self.0.json("GET", &path, None).await
    }

    pub async fn revoke_session(
        &self,
        id: &str,
        reason: &str,
        duration: Option<u32>,
    ) -> Result<RevocationResponse, ClientError> {
        let body = json!({"reason": reason, "duration_seconds": duration});
        self.0
            .json("POST", &format!("/v1/sessions/{id}/revoke"), Some(&body))
            .await
    }

    pub async fn revoke_caller(
        &self,
        principal: &str,
        reason: &str,
        duration: Option<u32>,
    ) -> Result<RevocationResponse, ClientError> {
        let body = json!({"principal": principal, "reason": reason, "duration_seconds": duration});
        self.0.json("POST", "/v1/callers/revoke", Some(&body)).await
    }
}
