//! The signing keys of each trusted issuer: found through its discovery
//! document, read from its JWKS, served from memory.
//!
//! - A key set is refreshed in the background once older than its TTL (5
//!   minutes, or a quarter of the maximum age when that is shorter); no
//!   request waits for that.
//! - A token naming a key id the set does not have makes one synchronous
//!   refetch (a key rotation), at most once per [`REFETCH_INTERVAL`] per
//!   issuer: a flood of made-up key ids costs the issuer nothing.
//! - A set older than `TVM_JWKS_MAX_AGE_SECONDS` (an hour by default; every
//!   refresh failed since) is not used: a request waits for a fetch, and
//!   fails closed (503) when it fails.
//! - Only RSA keys of at least 2048 bits (RS256) and P-256 keys (ES256) are
//!   read; symmetric (`oct`) and every other key is skipped, so no token can
//!   be checked with an HMAC keyed by public material.
//! - Only the configured issuer's discovery document is read, and its
//!   `issuer` must be that issuer exactly; nothing a token says picks a URL.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use crate::aws::{AwsError, Dependency};

/// A key set older than this is refreshed in the background (at most).
pub const TTL: Duration = Duration::from_secs(300);
/// At most one fetch per issuer this often for an unknown key id.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// After a fetch, no other for this long when keys are missing or stale:
/// with the issuer down, a flood of tokens is refused at once, never a fetch
/// (and a timeout's wait) each.
pub const BACKOFF: Duration = Duration::from_secs(1);
/// The largest discovery document or JWKS read.
const MAX_DOCUMENT: usize = 256 * 1024;

type Https = HttpClient<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// One verification key.
#[derive(Clone)]
pub struct Key {
    pub kid: Option<String>,
    pub alg: Algorithm,
    pub key: DecodingKey,
}

#[derive(Clone)]
struct KeySet {
    keys: Arc<Vec<Key>>,
    at: Instant,
}

struct Issuer {
    url: String,
    current: RwLock<Option<KeySet>>,
    /// When the last fetch started: unknown key ids refetch at most every
    /// [`REFETCH_INTERVAL`].
    last_fetch: RwLock<Option<Instant>>,
    /// When the last fetch failed: with no usable keys, tokens are refused
    /// for [`BACKOFF`] after it rather than each causing a fetch. (Not the
    /// start: a token arriving while the cold start's fetch is under way
    /// waits for it.)
    last_failure: RwLock<Option<Instant>>,
    fetch_lock: tokio::sync::Mutex<()>,
    inflight: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// What a lookup found.
pub enum Lookup {
    Found(Key),
    /// The issuer's current keys have no key of that id (after a refetch,
    /// when one was allowed).
    UnknownKey,
    /// A key of that id, for another algorithm than the token's.
    WrongAlgorithm,
}

pub struct Jwks {
    client: Https,
    timeout: Duration,
    ttl: Duration,
    max_age: Duration,
    issuers: HashMap<String, Arc<Issuer>>,
}

impl Jwks {
    /// `max_age`: how old a key set may be and still be used.
    pub fn new(
        issuers: &[String],
        timeout: Duration,
        max_age: Duration,
        roots: &crate::tls::Roots,
    ) -> Result<Arc<Self>, String> {
        Ok(Arc::new(Self {
            client: super::http_client(roots.web_client()?)?,
            timeout,
            ttl: TTL.min(max_age / 4),
            max_age,
            issuers: issuers
                .iter()
                .map(|url| {
                    let issuer = Issuer {
                        url: url.clone(),
                        current: RwLock::new(None),
                        last_fetch: RwLock::new(None),
                        last_failure: RwLock::new(None),
                        fetch_lock: tokio::sync::Mutex::new(()),
                        inflight: std::sync::Mutex::new(None),
                    };
                    (url.clone(), Arc::new(issuer))
                })
                .collect(),
        }))
    }

    /// Fetch every issuer's keys without waiting (at cold start).
    pub fn prime(self: &Arc<Self>) {
        for issuer in self.issuers.values() {
            self.refresh_in_background(issuer);
        }
    }

    /// The key `kid` (or the issuer's only key, when the token names none)
    /// of a trusted issuer, for `alg`.
    pub async fn key(
        self: &Arc<Self>,
        issuer: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Lookup, AwsError> {
        let Some(iss) = self.issuers.get(issuer) else {
            return Ok(Lookup::UnknownKey);
        };
        let set = match iss.snapshot() {
            Some(s) if s.at.elapsed() < self.ttl => s,
            Some(s) if s.at.elapsed() < self.max_age => {
                if iss.failed_within(BACKOFF).is_none() {
                    self.refresh_in_background(iss);
                }
                s
            }
            // None usable: fetch, or wait for the fetch under way (the cold
            // start's).
            _ => self.fetch_now(iss, None).await?,
        };
        match find(&set.keys, kid, alg) {
            Lookup::UnknownKey if iss.may_refetch() => {
                let fresh = self.fetch_now(iss, Some(set.at)).await?;
                Ok(find(&fresh.keys, kid, alg))
            }
            found => Ok(found),
        }
    }

    /// Wait, at most `bound`, for background refreshes in flight (Lambda
    /// freezes the environment once the invocation answers).
    pub async fn settle(&self, bound: Duration) {
        let tasks: Vec<_> = self
            .issuers
            .values()
            .filter_map(|i| i.inflight.lock().ok().and_then(|mut t| t.take()))
            .filter(|t| !t.is_finished())
            .collect();
        if !tasks.is_empty()
            && tokio::time::timeout(bound, futures_util::future::join_all(tasks))
                .await
                .is_err()
        {
            tracing::warn!(
                dependency = "jwks",
                "a key refresh was still running when the answer went"
            );
        }
    }

    fn refresh_in_background(self: &Arc<Self>, iss: &Arc<Issuer>) {
        let Ok(mut inflight) = iss.inflight.lock() else {
            return;
        };
        if inflight.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let (me, iss2) = (Arc::clone(self), Arc::clone(iss));
        let seen = iss.snapshot().map(|s| s.at);
        *inflight = Some(tokio::spawn(async move {
            let _ = me.fetch_now(&iss2, seen).await;
        }));
    }

    /// Fetch the issuer's keys, one fetch at a time; `seen` is the set the
    /// caller had: a newer one fetched meanwhile is used instead.
    async fn fetch_now(&self, iss: &Issuer, seen: Option<Instant>) -> Result<KeySet, AwsError> {
        let _guard = iss.fetch_lock.lock().await;
        if let Some(s) = iss.snapshot() {
            if seen.is_none_or(|seen| s.at > seen) && s.at.elapsed() < self.ttl {
                return Ok(s);
            }
        }
        // Failed while this one waited, or just before: not again so soon.
        if let Some(ago) = iss.failed_within(BACKOFF) {
            return Err(AwsError::unavailable(
                Dependency::Jwks,
                format!(
                    "reading the issuer's keys failed {} ms ago; not retried yet",
                    ago.as_millis()
                ),
            ));
        }
        if let Ok(mut g) = iss.last_fetch.write() {
            *g = Some(Instant::now());
        }
        let started = Instant::now();
        let keys = self.fetch(&iss.url).await.map_err(|e| {
            if let Ok(mut g) = iss.last_failure.write() {
                *g = Some(Instant::now());
            }
            tracing::error!(dependency = "jwks", issuer = %iss.url, error = %e, "the issuer's keys could not be read; its tokens are refused once its last keys are older than TVM_JWKS_MAX_AGE_SECONDS");
            AwsError::unavailable(Dependency::Jwks, e)
        })?;
        tracing::info!(
            issuer = %iss.url,
            keys = keys.len(),
            load_ms = started.elapsed().as_millis() as u64,
            "issuer keys loaded"
        );
        let set = KeySet {
            keys: Arc::new(keys),
            at: Instant::now(),
        };
        if let Ok(mut g) = iss.current.write() {
            *g = Some(set.clone());
        }
        Ok(set)
    }

    async fn fetch(&self, issuer: &str) -> Result<Vec<Key>, String> {
        let discovery = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let doc = self.get_json(&discovery).await?;
        if doc.get("issuer").and_then(Value::as_str) != Some(issuer) {
            return Err("the discovery document names another issuer".into());
        }
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or("the discovery document has no jwks_uri")?;
        let loopback_issuer = issuer.starts_with("http://");
        if !(jwks_uri.starts_with("https://")
            || loopback_issuer && tvm_core::oidc::valid_issuer(jwks_uri).is_ok())
        {
            return Err("the discovery document's jwks_uri is not https".into());
        }
        let jwks = self.get_json(jwks_uri).await?;
        let keys = jwks
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("the JWKS has no keys array")?;
        let keys: Vec<Key> = keys.iter().filter_map(key).collect();
        if keys.is_empty() {
            return Err("the JWKS has no RS256 or ES256 signing key".into());
        }
        Ok(keys)
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let uri: http::Uri = url.parse().map_err(|_| format!("{url} is not a URL"))?;
        let req = http::Request::get(uri)
            .header("accept", "application/json")
            .body(Empty::new())
            .map_err(|_| format!("{url} is not a URL"))?;
        let resp = tokio::time::timeout(self.timeout, self.client.request(req))
            .await
            .map_err(|_| format!("{url} timed out"))?
            .map_err(|e| format!("{url}: {}", crate::aws::error_chain(&e)))?;
        if resp.status() != http::StatusCode::OK {
            return Err(format!("{url} answered {}", resp.status().as_u16()));
        }
        let body = tokio::time::timeout(
            self.timeout,
            Limited::new(resp.into_body(), MAX_DOCUMENT).collect(),
        )
        .await
        .map_err(|_| format!("{url} timed out"))?
        .map_err(|_| format!("{url} answered more than {MAX_DOCUMENT} bytes or broke off"))?
        .to_bytes();
        serde_json::from_slice(&body).map_err(|_| format!("{url} did not answer JSON"))
    }
}

impl Issuer {
    fn snapshot(&self) -> Option<KeySet> {
        self.current.read().ok().and_then(|g| g.clone())
    }

    /// How long ago the last fetch failed, if less than `window`.
    fn failed_within(&self, window: Duration) -> Option<Duration> {
        let at = self.last_failure.read().ok().and_then(|g| *g)?;
        let ago = at.elapsed();
        (ago < window).then_some(ago)
    }

    fn may_refetch(&self) -> bool {
        self.last_fetch
            .read()
            .ok()
            .and_then(|g| *g)
            .is_none_or(|at| at.elapsed() >= REFETCH_INTERVAL)
    }
}

fn find(keys: &[Key], kid: Option<&str>, alg: Algorithm) -> Lookup {
    let key = match kid {
        Some(kid) => keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
        // A token without a key id only for an issuer with one key.
        None if keys.len() == 1 => keys.first(),
        None => None,
    };
    match key {
        None => Lookup::UnknownKey,
        Some(k) if k.alg != alg => Lookup::WrongAlgorithm,
        Some(k) => Lookup::Found(k.clone()),
    }
}

/// A JWK tvm verifies with, or `None` (skipped): `use` absent or `sig`;
/// RSA of 2048 bits or more for RS256, EC P-256 for ES256; an `alg` that
/// says otherwise skips it.
fn key(jwk: &Value) -> Option<Key> {
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    if field("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let b64 = |name: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(field(name)?)
            .ok()
    };
    let (alg, key) = match (field("kty")?, field("alg")) {
        ("RSA", None | Some("RS256")) => {
            let n = b64("n")?;
            let significant = n.iter().skip_while(|b| **b == 0).count();
            if significant < 256 {
                return None;
            }
            (
                Algorithm::RS256,
                DecodingKey::from_rsa_components(field("n")?, field("e")?).ok()?,
            )
        }
        ("EC", None | Some("ES256")) if field("crv") == Some("P-256") => {
            let (x, y) = (b64("x")?, b64("y")?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            (
                Algorithm::ES256,
                DecodingKey::from_ec_components(field("x")?, field("y")?).ok()?,
            )
        }
        _ => return None,
    };
    Some(Key {
        kid: field("kid").map(str::to_string),
        alg,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_rs256_of_2048_bits_and_es256_on_p256_are_read() {
        let b = |n: usize| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(vec![0xab; n]);
        let rsa = json!({"kty": "RSA", "kid": "r", "n": b(256), "e": "AQAB"});
        let ec = json!({"kty": "EC", "crv": "P-256", "kid": "e", "x": b(32), "y": b(32)});
        assert_eq!(key(&rsa).map(|k| k.alg), Some(Algorithm::RS256));
        assert_eq!(key(&ec).map(|k| k.alg), Some(Algorithm::ES256));
        for skipped in [
            json!({"kty": "oct", "k": b(32), "kid": "h"}),
            json!({"kty": "RSA", "n": b(128), "e": "AQAB"}),
            json!({"kty": "RSA", "n": b(256), "e": "AQAB", "alg": "RS512"}),
            json!({"kty": "RSA", "n": b(256), "e": "AQAB", "use": "enc"}),
            json!({"kty": "EC", "crv": "P-384", "x": b(48), "y": b(48)}),
            json!({"kty": "EC", "crv": "P-256", "x": b(32), "y": b(32), "alg": "HS256"}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": b(32)}),
        ] {
            assert!(key(&skipped).is_none(), "{skipped}");
        }
        let keys = vec![key(&rsa).unwrap(), key(&ec).unwrap()];
        assert!(matches!(
            find(&keys, Some("r"), Algorithm::RS256),
            Lookup::Found(_)
        ));
        assert!(matches!(
            find(&keys, Some("r"), Algorithm::ES256),
            Lookup::WrongAlgorithm
        ));
        assert!(matches!(
            find(&keys, Some("x"), Algorithm::RS256),
            Lookup::UnknownKey
        ));
        assert!(matches!(
            find(&keys, None, Algorithm::RS256),
            Lookup::UnknownKey
        ));
        assert!(matches!(
            find(&keys[..1], None, Algorithm::RS256),
            Lookup::Found(_)
        ));
    }
}
