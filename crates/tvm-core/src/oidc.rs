//! OIDC callers: the claims of a token whose signature was verified (by tvm
//! in the `jwt` identity mode, or by an API Gateway JWT authorizer), checked
//! against what the deployment trusts and made a principal of kind `oidc`.
//!
//! The signature is checked where the keys are (tvm-lambda); everything
//! about the claims is decided here, the time passed in:
//! - `iss` must be one of `TVM_JWT_ISSUERS`, exactly;
//! - `aud` (a string or a list) must name one of `TVM_JWT_AUDIENCES`;
//! - `exp` is required, `nbf` and `iat` are checked when present, each with
//!   at most [`MAX_SKEW_SECONDS`] of clock skew;
//! - a token lives at most [`MAX_TOKEN_LIFETIME_SECONDS`] (from `iat`, or
//!   from now without one): a leaked long-lived token is no standing key;
//! - `sub` is 1-255 printable ASCII characters.
//!
//! The caller's id, and its stable principal, is `oidc:ISSUER#SUBJECT`:
//! both exactly as the token has them (OIDC makes them case-sensitive; an
//! issuer has no fragment, so the first `#` ends it).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::glob::Glob;

/// How an oidc caller's id starts.
pub const ID_PREFIX: &str = "oidc:";
/// The longest bearer token tvm reads (API Gateway's HTTP APIs take 10 KB of
/// headers in all). A longer one is refused before it is decoded.
pub const MAX_TOKEN_BYTES: usize = 8192;
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const MAX_SKEW_SECONDS: i64 = 60;
/// The longest a token tvm accepts may live, `exp - iat` (OIDC ID tokens
/// and CI tokens live minutes to an hour; Kubernetes' projected tokens an
/// hour by default).
pub const MAX_TOKEN_LIFETIME_SECONDS: i64 = 24 * 3600;
pub const MAX_ISSUER_LEN: usize = 256;
/// OIDC Core 1.0, 2: `sub` "MUST NOT exceed 255 ASCII characters".
pub const MAX_SUBJECT_LEN: usize = 255;

/// A claim as tvm reads it: a string, a number or a boolean (as written), or
/// a list of them. Objects and nulls are not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ClaimValue {
    One(String),
    Many(Vec<String>),
}

/// The claims of a token, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Claims(BTreeMap<String, ClaimValue>);

impl Claims {
    pub fn get(&self, name: &str) -> Option<&ClaimValue> {
        self.0.get(name)
    }

    /// A claim that is one value (a list is not).
    pub fn scalar(&self, name: &str) -> Option<&str> {
        match self.0.get(name) {
            Some(ClaimValue::One(v)) => Some(v),
            _ => None,
        }
    }

    /// Does the claim match `glob`: its value, or any value of a list?
    pub fn matches(&self, name: &str, glob: &Glob) -> bool {
        match self.0.get(name) {
            Some(ClaimValue::One(v)) => glob.matches(v),
            Some(ClaimValue::Many(vs)) => vs.iter().any(|v| glob.matches(v)),
            None => false,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &ClaimValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// Who an oidc caller is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Oidc {
    pub issuer: String,
    pub subject: String,
    pub claims: Claims,
}

/// What a deployment trusts: `TVM_JWT_ISSUERS` and `TVM_JWT_AUDIENCES`.
/// Empty audiences do not constrain: only for an API Gateway JWT
/// authorizer, which checked them (the `jwt` mode requires some).
#[derive(Debug, Clone, Copy)]
pub struct Trust<'a> {
    pub issuers: &'a [String],
    pub audiences: &'a [String],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token's issuer (iss) is not one TVM_JWT_ISSUERS lists")]
    Issuer,
    #[error("the token's audience (aud) is not one TVM_JWT_AUDIENCES lists")]
    Audience,
    #[error("the token has no expiry (exp)")]
    NoExpiry,
    #[error("the token has expired (exp)")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token was issued in the future (iat)")]
    IssuedInFuture,
    #[error("the token lives longer than 24 hours (exp - iat); tvm takes short-lived tokens only")]
    Lifetime,
    #[error("the token's {0} claim is not a number of seconds")]
    Time(&'static str),
    #[error(
        "the token's subject (sub) is missing, longer than 255 characters or not printable ASCII"
    )]
    Subject,
}

/// `oidc:ISSUER#SUBJECT`.
pub fn caller_id(issuer: &str, subject: &str) -> String {
    format!("{ID_PREFIX}{issuer}#{subject}")
}

/// The issuer and subject of an oidc caller id, if it is one.
pub fn parse_caller_id(id: &str) -> Option<(&str, &str)> {
    let (issuer, subject) = id.strip_prefix(ID_PREFIX)?.split_once('#')?;
    (valid_issuer(issuer).is_ok() && valid_subject(subject)).then_some((issuer, subject))
}

fn printable(s: &str) -> bool {
    s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

fn valid_subject(s: &str) -> bool {
    (1..=MAX_SUBJECT_LEN).contains(&s.len()) && printable(s)
}

/// An issuer tvm may trust: an `https://` URL without query or fragment
/// (OIDC Discovery 1.0, 2), or `http://` to a loopback host for local runs.
/// It is compared exactly, never normalized.
pub fn valid_issuer(s: &str) -> Result<(), &'static str> {
    if s.is_empty() || s.len() > MAX_ISSUER_LEN || !printable(s) {
        return Err("must be a URL of at most 256 printable characters");
    }
    if s.contains([
        '?', '#', '"', '\'', '\\', '*', '<', '>', '`', '{', '}', '|', '^', '@',
    ]) {
        return Err("must have no query, fragment, user info, quote, wildcard or brace");
    }
    let rest = if let Some(r) = s.strip_prefix("https://") {
        r
    } else if let Some(r) = s.strip_prefix("http://") {
        let host = r.split(['/', ':']).next().unwrap_or_default();
        let host = if r.starts_with("[::1]") {
            "[::1]"
        } else {
            host
        };
        if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            return Err("must be https:// (http:// only to 127.0.0.1, localhost or [::1])");
        }
        r
    } else {
        return Err("must be an https:// URL");
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err("must name a host");
    }
    Ok(())
}

fn seconds(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        // NumericDate: seconds, possibly fractional (RFC 7519, 2).
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite() && f.abs() < 1e15)
            .map(|f| Some(f.floor() as i64))
            .ok_or(TokenError::Time(name)),
        Some(_) => Err(TokenError::Time(name)),
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn claim(v: &Value) -> Option<ClaimValue> {
    match v {
        Value::Array(items) => Some(ClaimValue::Many(items.iter().filter_map(scalar).collect())),
        other => scalar(other).map(ClaimValue::One),
    }
}

/// The caller a verified token's claims name (a principal with
/// `Principal::from`), or why the token is refused.
pub fn caller(claims: &Map<String, Value>, trust: Trust<'_>, now: i64) -> Result<Oidc, TokenError> {
    let issuer = match claims.get("iss") {
        Some(Value::String(i)) if trust.issuers.iter().any(|t| t == i) => i.clone(),
        _ => return Err(TokenError::Issuer),
    };
    if !trust.audiences.is_empty() {
        let named = |a: &Value| {
            a.as_str()
                .is_some_and(|a| trust.audiences.iter().any(|t| t == a))
        };
        let ok = match claims.get("aud") {
            Some(Value::Array(list)) => list.iter().any(named),
            Some(a) => named(a),
            None => false,
        };
        if !ok {
            return Err(TokenError::Audience);
        }
    }
    let exp = seconds(claims, "exp")?.ok_or(TokenError::NoExpiry)?;
    if now >= exp.saturating_add(MAX_SKEW_SECONDS) {
        return Err(TokenError::Expired);
    }
    if seconds(claims, "nbf")?.is_some_and(|nbf| nbf.saturating_sub(MAX_SKEW_SECONDS) > now) {
        return Err(TokenError::NotYetValid);
    }
    let iat = seconds(claims, "iat")?;
    if iat.is_some_and(|iat| iat.saturating_sub(MAX_SKEW_SECONDS) > now) {
        return Err(TokenError::IssuedInFuture);
    }
    if exp.saturating_sub(iat.unwrap_or(now)) > MAX_TOKEN_LIFETIME_SECONDS {
        return Err(TokenError::Lifetime);
    }
    let subject = match claims.get("sub") {
        Some(Value::String(s)) if valid_subject(s) => s.clone(),
        _ => return Err(TokenError::Subject),
    };
    let claims = Claims(
        claims
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), claim(v)?)))
            .collect(),
    );
    Ok(Oidc {
        issuer,
        subject,
        claims,
    })
}

/// The caller an API Gateway HTTP API JWT authorizer verified. API Gateway
/// hands its claims over as strings: numbers as their digits, a list as
/// `[a b c]`; they are read back as numbers and lists, then checked as
/// [`caller`] checks a token's (API Gateway checked them too: this holds a
/// misconfigured authorizer to what tvm trusts).
pub fn authorizer_caller<'c>(
    claims: impl IntoIterator<Item = (&'c str, &'c str)>,
    trust: Trust<'_>,
    now: i64,
) -> Result<Oidc, TokenError> {
    let map: Map<String, Value> = claims
        .into_iter()
        .map(|(k, v)| {
            let value = match (k, v.strip_prefix('[').and_then(|l| l.strip_suffix(']'))) {
                ("exp" | "nbf" | "iat", _) => v
                    .parse::<i64>()
                    .map_or_else(|_| Value::String(v.into()), Value::from),
                (_, Some(list)) => Value::Array(
                    list.split_whitespace()
                        .map(|s| Value::String(s.into()))
                        .collect(),
                ),
                _ => Value::String(v.into()),
            };
            (k.to_string(), value)
        })
        .collect();
    caller(&map, trust, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Principal;
    use serde_json::json;

    const ISS: &str = "https://id.example.com";
    const NOW: i64 = 1_800_000_000;

    fn trust<'a>(issuers: &'a [String], audiences: &'a [String]) -> Trust<'a> {
        Trust { issuers, audiences }
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn good() -> Value {
        json!({"iss": ISS, "aud": "tvm", "sub": "user-1", "exp": NOW + 300, "iat": NOW - 5,
               "email": "Alice@Example.com", "groups": ["dev", "ops"], "tenant": "acme",
               "n": 7, "admin": false, "address": {"x": 1}})
    }

    #[test]
    fn a_good_token_is_an_oidc_caller_with_its_claims() {
        let (i, a) = (vec![ISS.to_string()], vec!["tvm".to_string()]);
        let p = Principal::from(caller(&claims(good()), trust(&i, &a), NOW).unwrap());
        assert_eq!(p.arn, "oidc:https://id.example.com#user-1");
        assert_eq!(p.stable_id(), p.arn);
        assert_eq!(p.issuer(), Some(ISS));
        assert_eq!(p.account, "");
        let o = p.oidc.as_deref().unwrap();
        assert_eq!(o.claims.scalar("tenant"), Some("acme"));
        assert_eq!(o.claims.scalar("n"), Some("7"));
        assert_eq!(o.claims.scalar("admin"), Some("false"));
        assert_eq!(o.claims.scalar("groups"), None);
        assert!(o.claims.get("address").is_none());
        assert!(o.claims.matches("groups", &Glob::parse("ops").unwrap()));
        assert!(!o.claims.matches("groups", &Glob::parse("op").unwrap()));
        assert_eq!(p.persons(), ["user-1", "alice"]);
        assert_eq!(parse_caller_id(&p.arn), Some((ISS, "user-1")));
    }

    #[test]
    fn issuer_audience_and_times_are_checked() {
        let (i, a) = (vec![ISS.to_string()], vec!["tvm".to_string()]);
        let t = trust(&i, &a);
        let with = |k: &str, v: Value| {
            let mut c = claims(good());
            c.insert(k.into(), v);
            caller(&c, t, NOW).map(|_| ())
        };
        let without = |k: &str| {
            let mut c = claims(good());
            c.remove(k);
            caller(&c, t, NOW).map(|_| ())
        };
        assert_eq!(
            with("iss", json!("https://id.example.com/")),
            Err(TokenError::Issuer)
        );
        assert_eq!(
            with("iss", json!("https://ID.example.com")),
            Err(TokenError::Issuer)
        );
        assert_eq!(without("iss"), Err(TokenError::Issuer));
        assert_eq!(with("aud", json!("other")), Err(TokenError::Audience));
        assert_eq!(with("aud", json!(["other", "tvm"])), Ok(()));
        assert_eq!(without("aud"), Err(TokenError::Audience));
        assert_eq!(without("exp"), Err(TokenError::NoExpiry));
        assert_eq!(
            with("exp", json!(NOW - MAX_SKEW_SECONDS)),
            Err(TokenError::Expired)
        );
        assert_eq!(with("exp", json!(NOW - MAX_SKEW_SECONDS + 1)), Ok(()));
        assert_eq!(with("exp", json!("soon")), Err(TokenError::Time("exp")));
        assert_eq!(
            with("nbf", json!(NOW + MAX_SKEW_SECONDS + 1)),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(with("nbf", json!(NOW + MAX_SKEW_SECONDS)), Ok(()));
        assert_eq!(
            with("iat", json!(NOW + 3600)),
            Err(TokenError::IssuedInFuture)
        );
        let day = MAX_TOKEN_LIFETIME_SECONDS;
        let lived = |iat: Option<i64>, exp: i64| {
            let mut c = claims(good());
            c.remove("iat");
            if let Some(iat) = iat {
                c.insert("iat".into(), json!(iat));
            }
            c.insert("exp".into(), json!(exp));
            caller(&c, t, NOW).map(|_| ())
        };
        assert_eq!(lived(Some(NOW - 10), NOW - 10 + day), Ok(()));
        assert_eq!(
            lived(Some(NOW - 10), NOW - 9 + day),
            Err(TokenError::Lifetime)
        );
        assert_eq!(
            lived(Some(NOW - 400 * day), NOW + 600),
            Err(TokenError::Lifetime)
        );
        assert_eq!(lived(None, NOW + day), Ok(()));
        assert_eq!(lived(None, NOW + day + 1), Err(TokenError::Lifetime));
        assert_eq!(with("sub", json!("")), Err(TokenError::Subject));
        assert_eq!(with("sub", json!("a b")), Err(TokenError::Subject));
        assert_eq!(
            with("sub", json!("x".repeat(256))),
            Err(TokenError::Subject)
        );
        assert_eq!(with("sub", json!(12)), Err(TokenError::Subject));
        assert_eq!(with("sub", json!("auth0|1#2")), Ok(()));
    }

    #[test]
    fn an_authorizers_string_claims_are_read_back() {
        let i = vec![ISS.to_string()];
        let exp = (NOW + 60).to_string();
        let p = Principal::from(
            authorizer_caller(
                [
                    ("iss", ISS),
                    ("sub", "u"),
                    ("exp", exp.as_str()),
                    ("groups", "[dev ops]"),
                ],
                trust(&i, &[]),
                NOW,
            )
            .unwrap(),
        );
        let o = p.oidc.as_deref().unwrap();
        assert!(o.claims.matches("groups", &Glob::parse("ops").unwrap()));
        let old = (NOW - 3600).to_string();
        assert_eq!(
            authorizer_caller(
                [("iss", ISS), ("sub", "u"), ("exp", old.as_str())],
                trust(&i, &[]),
                NOW
            ),
            Err(TokenError::Expired)
        );
        assert_eq!(
            authorizer_caller(
                [
                    ("iss", "https://other"),
                    ("sub", "u"),
                    ("exp", exp.as_str())
                ],
                trust(&i, &[]),
                NOW
            ),
            Err(TokenError::Issuer)
        );
    }

    #[test]
    fn issuers_are_https_or_loopback_urls() {
        for ok in [
            "https://id.example.com",
            "https://login.example.com/tenant/v2.0",
            "http://127.0.0.1:4000",
            "http://localhost/x",
            "http://[::1]:9",
        ] {
            assert_eq!(valid_issuer(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "id.example.com",
            "http://id.example.com",
            "http://localhost:1@evil.com",
            "http://localhost@evil.com/",
            "http://127.0.0.1.evil.com",
            "https://",
            "https:///x",
            "https://a?b",
            "https://a#b",
            "https://a b",
            "https://a\"b",
            "https://*.example.com",
            "ftp://x",
        ] {
            assert!(valid_issuer(bad).is_err(), "{bad}");
        }
    }
}
