//! The one machine-readable line every request leaves in the log, written
//! by the handler from the route's outcome. Never a secret: no credentials,
//! no headers, no signature.
//!
//! The line is also tvm's metrics, in CloudWatch's embedded metric format
//! (EMF): CloudWatch Logs extracts them from the line as it arrives, so
//! measuring costs no call and no round trip.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::Facts;
use crate::error::ApiError;
use crate::event::{truncate, Reply};

/// The CloudWatch namespace of tvm's metrics (docs/operations.md lists them).
pub const METRICS_NAMESPACE: &str = "tvm";

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
    dependency: Option<&'static str>,
    #[serde(flatten)]
    facts: Facts,
    latency_ms: f64,
    /// The `service` dimension: the function's name.
    service: String,
}

/// What the line measures besides the request itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct Measures {
    /// The age of the policy set being served, once one is loaded.
    pub policy_age: Option<Duration>,
    /// Policy loads that failed since the previous line.
    pub policy_refresh_failures: u64,
    /// Documents refused for their signature since the previous line.
    pub policy_signature_rejections: u64,
}

impl DecisionLog {
    pub fn new(service: &str, request_id: &str, method: &str, path: &str) -> Self {
        Self {
            kind: "decision",
            request_id: request_id.to_string(),
            method: method.to_string(),
            path: truncate(path, 128),
            service: service.to_string(),
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
        measures: Option<Measures>,
    ) {
        self.status = reply.status;
        self.facts = facts;
        if let Some(e) = error {
            self.code = Some(e.answer(None).1.as_str());
            self.dependency = e.failed_dependency().map(|d| d.as_str());
            self.facts.decision.get_or_insert("error");
            if self.facts.reason.is_none() {
                self.facts.reason = Some(truncate(&e.to_string(), 300));
            }
        }
        self.latency_ms = (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
        if let Some(line) = self.line(measures, SystemTime::now()) {
            println!("{line}");
        }
    }

    /// The line: the decision's fields, the metrics' values, and the `_aws`
    /// block that tells CloudWatch which fields are metrics of which
    /// dimensions.
    /// `measures: None`: a line that is no metric (the health check).
    fn line(&self, measures: Option<Measures>, now: SystemTime) -> Option<String> {
        let Value::Object(mut line) = serde_json::to_value(self).ok()? else {
            return None;
        };
        let Some(measures) = measures else {
            return serde_json::to_string(&line).ok();
        };
        // The 5xx rate's denominator: requests of identified callers (and
        // every 5xx), so that unauthenticated noise on a front without IAM
        // auth cannot dilute it.
        let mut metrics: Vec<(&str, &str, f64)> = Vec::new();
        if self.facts.caller.is_some() || self.status >= 500 {
            metrics.push(("Requests", "Count", 1.0));
        }
        let mut by_code: Vec<&str> = Vec::new();
        let status = self.status;
        if status == 200 && self.path == "/v1/credentials" {
            metrics.push(("Vends", "Count", 1.0));
        }
        if status == 201 && self.facts.decision == Some("break_glass") {
            metrics.push(("BreakGlassOpened", "Count", 1.0));
        }
        if (400..500).contains(&status) {
            metrics.push(("Refusals", "Count", 1.0));
            by_code.push("Refusals");
        }
        if status >= 500 {
            metrics.push(("ServerErrors", "Count", 1.0));
            by_code.push("ServerErrors");
        }
        if self.dependency.is_some() {
            metrics.push(("DependencyFailures", "Count", 1.0));
        }
        if let Some(age) = measures.policy_age {
            metrics.push(("PolicyAge", "Seconds", age.as_secs() as f64));
        }
        if measures.policy_refresh_failures > 0 {
            let n = measures.policy_refresh_failures as f64;
            metrics.push(("PolicyRefreshFailures", "Count", n));
        }
        if measures.policy_signature_rejections > 0 {
            let n = measures.policy_signature_rejections as f64;
            metrics.push(("PolicySignatureRejections", "Count", n));
        }
        let spec = |names: &[&str]| -> Vec<Value> {
            metrics
                .iter()
                .filter(|(name, ..)| names.is_empty() || names.contains(name))
                .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
                .collect()
        };
        let mut directives = vec![json!({
            "Namespace": METRICS_NAMESPACE,
            "Dimensions": [["service"]],
            "Metrics": spec(&[]),
        })];
        if self.code.is_some() && !by_code.is_empty() {
            directives.push(json!({
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [["service", "code"]],
                "Metrics": spec(&by_code),
            }));
        }
        if self.dependency.is_some() {
            directives.push(json!({
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [["service", "dependency"]],
                "Metrics": spec(&["DependencyFailures"]),
            }));
        }
        for (name, _, value) in &metrics {
            line.insert(name.to_string(), json!(value));
        }
        line.insert("latency_ms".into(), json!(self.latency_ms));
        let mut aws = Map::new();
        let at = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        aws.insert("Timestamp".into(), json!(at.as_millis() as u64));
        let latency = json!({"Name": "latency_ms", "Unit": "Milliseconds"});
        if let Some(Value::Array(m)) = directives[0].get_mut("Metrics") {
            m.push(latency);
        }
        aws.insert("CloudWatchMetrics".into(), Value::Array(directives));
        line.insert("_aws".into(), Value::Object(aws));
        serde_json::to_string(&line).ok()
    }

    /// The answer and the line for a request that never reached a route (a
    /// malformed event, the deadline).
    pub fn failed(
        service: &str,
        request_id: &str,
        error: &ApiError,
        reason: String,
        started: Instant,
    ) -> Reply {
        let reply = super::error_reply(error, request_id, None);
        let facts = Facts {
            reason: Some(reason),
            ..Default::default()
        };
        Self::new(service, request_id, "", "").finish(
            &reply,
            Some(error),
            facts,
            started,
            Some(Measures::default()),
        );
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::Dependency;

    fn line(status: u16, path: &str, error: Option<ApiError>, facts: Facts, m: Measures) -> Value {
        let mut log = DecisionLog::new("tvm-prod", "r1", "POST", path);
        log.status = status;
        log.facts = facts;
        if let Some(e) = &error {
            log.code = Some(e.answer(None).1.as_str());
            log.dependency = e.failed_dependency().map(|d| d.as_str());
        }
        log.latency_ms = 12.5;
        let at = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        serde_json::from_str(&log.line(Some(m), at).unwrap()).unwrap()
    }

    /// What CloudWatch requires of an EMF line (its specification): every
    /// metric a directive names is a number at the top level, every
    /// dimension a string there; at most 30 dimensions and 100 metrics per
    /// directive; a millisecond timestamp. Returns the metrics by dimension set.
    fn emf(line: &Value) -> Vec<(Vec<String>, String, f64)> {
        let aws = &line["_aws"];
        assert_eq!(aws["Timestamp"], 1_800_000_000_000u64);
        let mut out = Vec::new();
        for d in aws["CloudWatchMetrics"].as_array().unwrap() {
            assert_eq!(d["Namespace"], METRICS_NAMESPACE);
            let metrics = d["Metrics"].as_array().unwrap();
            assert!(!metrics.is_empty() && metrics.len() <= 100);
            for set in d["Dimensions"].as_array().unwrap() {
                let set: Vec<String> = set
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| k.as_str().unwrap().to_string())
                    .collect();
                assert!(set.len() <= 30);
                for k in &set {
                    assert!(line[k].is_string(), "dimension {k} is not a string field");
                }
                for m in metrics {
                    let name = m["Name"].as_str().unwrap();
                    let value = line[name].as_f64().unwrap_or_else(|| panic!("{name}"));
                    assert!(m["Unit"].is_string());
                    out.push((set.clone(), name.to_string(), value));
                }
            }
        }
        out
    }

    fn has(found: &[(Vec<String>, String, f64)], dims: &[&str], name: &str) -> Option<f64> {
        found
            .iter()
            .find(|(d, n, _)| d == dims && n == name)
            .map(|(.., v)| *v)
    }

    #[test]
    fn a_vend_counts_as_a_vend_with_its_latency_and_the_policy_age() {
        let m = Measures {
            policy_age: Some(Duration::from_secs(17)),
            policy_refresh_failures: 0,
            policy_signature_rejections: 0,
        };
        let facts = Facts {
            caller: Some("arn:aws:sts::123456789012:assumed-role/orders-task/acme".into()),
            ..Facts::decided("allow")
        };
        let found = emf(&line(200, "/v1/credentials", None, facts, m));
        assert_eq!(has(&found, &["service"], "Requests"), Some(1.0));
        assert_eq!(has(&found, &["service"], "Vends"), Some(1.0));
        assert_eq!(has(&found, &["service"], "latency_ms"), Some(12.5));
        assert_eq!(has(&found, &["service"], "PolicyAge"), Some(17.0));
        assert_eq!(has(&found, &["service"], "Refusals"), None);
        assert_eq!(has(&found, &["service"], "PolicyRefreshFailures"), None);
    }

    #[test]
    fn a_refusal_counts_by_code_and_a_dependency_failure_by_dependency() {
        let limited = ApiError::RateLimited { retry_after: 3 };
        let v = line(
            429,
            "/v1/credentials",
            Some(limited),
            Facts::default(),
            Measures::default(),
        );
        assert_eq!(v["code"], "RateLimited");
        let found = emf(&v);
        assert_eq!(has(&found, &["service"], "Refusals"), Some(1.0));
        assert_eq!(has(&found, &["service", "code"], "Refusals"), Some(1.0));
        assert_eq!(has(&found, &["service"], "Vends"), None);

        let down = ApiError::dependency(Dependency::DynamoDb, "down");
        let m = Measures {
            policy_age: None,
            policy_refresh_failures: 2,
            policy_signature_rejections: 0,
        };
        let v = line(503, "/v1/credentials", Some(down), Facts::default(), m);
        let found = emf(&v);
        assert_eq!(v["dependency"], "dynamodb");
        assert_eq!(
            has(&found, &["service", "dependency"], "DependencyFailures"),
            Some(1.0)
        );
        assert_eq!(has(&found, &["service", "code"], "ServerErrors"), Some(1.0));
        assert_eq!(
            has(&found, &["service"], "PolicyRefreshFailures"),
            Some(2.0)
        );
    }

    #[test]
    fn unidentified_requests_do_not_dilute_the_5xx_rate() {
        let refused = ApiError::Unauthenticated("no identity".into());
        let v = line(
            401,
            "/v1/credentials",
            Some(refused),
            Facts::default(),
            Measures::default(),
        );
        let found = emf(&v);
        assert_eq!(has(&found, &["service"], "Requests"), None);
        assert_eq!(has(&found, &["service", "code"], "Refusals"), Some(1.0));
        let down = ApiError::dependency(Dependency::Sts, "down");
        let v = line(
            503,
            "/v1/credentials",
            Some(down),
            Facts::default(),
            Measures::default(),
        );
        assert_eq!(
            has(&emf(&v), &["service"], "Requests"),
            Some(1.0),
            "every 5xx is in the denominator"
        );
    }

    #[test]
    fn a_line_without_measures_is_no_metric() {
        let mut log = DecisionLog::new("tvm-prod", "r1", "GET", "/v1/health");
        log.status = 200;
        let v: Value = serde_json::from_str(&log.line(None, UNIX_EPOCH).unwrap()).unwrap();
        assert_eq!(v["type"], "decision");
        assert!(v.get("_aws").is_none() && v.get("Requests").is_none());
    }

    #[test]
    fn an_opened_break_glass_event_is_counted() {
        let v = line(
            201,
            "/v1/breakglass",
            None,
            Facts::decided("break_glass"),
            Measures::default(),
        );
        assert_eq!(has(&emf(&v), &["service"], "BreakGlassOpened"), Some(1.0));
    }
}
