//! The one machine-readable line every request leaves in the log, written
//! by the handler from the route's outcome. Never a secret: no credentials,
//! no headers, no signature.

use std::time::Instant;

use serde::Serialize;

use super::Facts;
use crate::error::ApiError;
use crate::event::{truncate, Reply};

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
    #[serde(flatten)]
    facts: Facts,
    latency_ms: f64,
}

impl DecisionLog {
    pub fn new(request_id: &str, method: &str, path: &str) -> Self {
        Self {
            kind: "decision",
            request_id: request_id.to_string(),
            method: method.to_string(),
            path: truncate(path, 128),
            ..Default::default()
        }
    }

    /// Write the line for an answer.
    pub fn finish(
        mut self,
        reply: &Reply,
        error: Option<&ApiError>,
        facts: Facts,
        started: Instant,
    ) {
        self.status = reply.status;
        self.facts = facts;
        if let Some(e) = error {
            self.code = Some(e.answer(None).1.as_str());
            self.facts.decision.get_or_insert("error");
            if self.facts.reason.is_none() {
                self.facts.reason = Some(truncate(&e.to_string(), 300));
            }
        }
        self.latency_ms = (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
        if let Ok(line) = serde_json::to_string(&self) {
            println!("{line}");
        }
    }

    /// The answer and the line for a request that never reached a route (a
    /// malformed event, the deadline).
    pub fn failed(request_id: &str, error: &ApiError, reason: String, started: Instant) -> Reply {
        let reply = super::error_reply(error, request_id, None);
        let facts = Facts {
            reason: Some(reason),
            ..Default::default()
        };
        Self::new(request_id, "", "").finish(&reply, Some(error), facts, started);
        reply
    }
}
