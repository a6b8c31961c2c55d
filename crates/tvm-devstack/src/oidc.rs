//! A local OpenID Connect issuer for tests and the demo: an ES256 (P-256)
//! and an RS256 (2048-bit) key made at start, the discovery document and
//! JWKS on loopback, and a sign-in that mints an ID token for whoever asks
//! (`GET /token?sub=...&aud=...&CLAIM=...`): local only, never deployed.
//!
//! Tests also sign whatever they like with [`Issuer::sign`], take the JWKS
//! down ([`Issuer::set_down`]) and count its fetches.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::KeyPair;
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// The audience the local issuer's sign-in mints for by default.
pub const AUDIENCE: &str = "tvm-local";
pub const ES_KID: &str = "es-1";
pub const RS_KID: &str = "rs-1";

struct Keys {
    es: EncodingKey,
    rs: EncodingKey,
    jwks: Value,
    /// The RSA public key as PKCS#1 DER: what an algorithm-confusion attack
    /// uses as an HMAC secret.
    rsa_public_der: Vec<u8>,
}

struct State {
    url: String,
    keys: Keys,
    down: AtomicBool,
    /// Milliseconds the discovery document and the JWKS take to answer.
    delay_ms: AtomicU64,
    jwks_fetches: AtomicUsize,
}

pub struct Issuer {
    state: Arc<State>,
    accept: tokio::task::JoinHandle<()>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn make_keys() -> Result<Keys, String> {
    use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
    use rsa::traits::PublicKeyParts;
    let rng = ring::rand::SystemRandom::new();
    let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 =
        ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).map_err(|_| "no P-256 key")?;
    let pair = ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng)
        .map_err(|_| "no P-256 key")?;
    // Uncompressed point: 0x04 || x || y.
    let point = pair.public_key().as_ref();
    let (x, y) = (&point[1..33], &point[33..65]);
    let rsa = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
        .map_err(|e| format!("no RSA key: {e}"))?;
    let der = rsa.to_pkcs1_der().map_err(|e| format!("RSA DER: {e}"))?;
    let public = rsa.to_public_key();
    let rsa_public_der = public
        .to_pkcs1_der()
        .map_err(|e| format!("RSA DER: {e}"))?
        .as_bytes()
        .to_vec();
    let jwks = json!({"keys": [
        {"kty": "EC", "crv": "P-256", "kid": ES_KID, "use": "sig", "alg": "ES256", "x": b64(x), "y": b64(y)},
        {"kty": "RSA", "kid": RS_KID, "use": "sig", "alg": "RS256",
         "n": b64(&public.n().to_bytes_be()), "e": b64(&public.e().to_bytes_be())}
    ]});
    Ok(Keys {
        es: EncodingKey::from_ec_der(pkcs8.as_ref()),
        rs: EncodingKey::from_rsa_der(der.as_bytes()),
        jwks,
        rsa_public_der,
    })
}

impl Issuer {
    /// Start on 127.0.0.1, a free port.
    pub async fn start() -> Result<Self, String> {
        Self::start_on("127.0.0.1:0").await
    }

    pub async fn start_on(bind: &str) -> Result<Self, String> {
        let keys = tokio::task::spawn_blocking(make_keys)
            .await
            .map_err(|e| e.to_string())??;
        let listener = TcpListener::bind(bind).await.map_err(|e| e.to_string())?;
        let addr: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
        let state = Arc::new(State {
            url: format!("http://{addr}"),
            keys,
            down: AtomicBool::new(false),
            delay_ms: AtomicU64::new(0),
            jwks_fetches: AtomicUsize::new(0),
        });
        let accept = crate::serve::http1(listener, Arc::clone(&state), serve);
        Ok(Self { state, accept })
    }

    /// The issuer URL: its tokens' `iss`, and `TVM_JWT_ISSUERS`.
    pub fn url(&self) -> String {
        self.state.url.clone()
    }

    /// A token with `claims` over the defaults (`iss`, `aud`, `iat`, and
    /// `exp` in 10 minutes), signed ES256.
    pub fn token(&self, claims: Value) -> String {
        let mut c = self.claims(600);
        if let Some(extra) = claims.as_object() {
            for (k, v) in extra {
                c[k] = v.clone();
            }
        }
        self.sign(Algorithm::ES256, Some(ES_KID), &c)
    }

    /// The default claims of a token valid for `seconds`.
    pub fn claims(&self, seconds: i64) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({"iss": self.state.url, "aud": AUDIENCE, "iat": now, "exp": now + seconds})
    }

    /// `claims` signed with the issuer's key for `alg` (ES256 or RS256),
    /// under key id `kid`.
    pub fn sign(&self, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_string);
        let key = match alg {
            Algorithm::RS256 => &self.state.keys.rs,
            _ => &self.state.keys.es,
        };
        jsonwebtoken::encode(&header, claims, key).expect("the local issuer signs")
    }

    /// The RSA public key (PKCS#1 DER), for algorithm-confusion attacks.
    pub fn rsa_public_der(&self) -> &[u8] {
        &self.state.keys.rsa_public_der
    }

    /// The JWKS as served.
    pub fn jwks(&self) -> &Value {
        &self.state.keys.jwks
    }

    /// Take the discovery document and JWKS down (503) or bring them back.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// Make the discovery document and the JWKS answer `delay` late each
    /// (an issuer far away, or slow).
    pub fn set_delay(&self, delay: std::time::Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.state.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// How many times the JWKS was asked for.
    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn stop(&self) {
        self.accept.abort();
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn answer(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        "content-type",
        "application/json".parse().expect("a header"),
    );
    // A browser page on another loopback port signs in here.
    h.insert(
        "access-control-allow-origin",
        "*".parse().expect("a header"),
    );
    r
}

fn query(req: &Request<Incoming>) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match (bytes[i], bytes.get(i + 1..i + 3)) {
                (b'%', Some(hex)) => {
                    match u8::from_str_radix(std::str::from_utf8(hex).unwrap_or("zz"), 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 3;
                        }
                        Err(_) => {
                            out.push(b'%');
                            i += 1;
                        }
                    }
                }
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

async fn serve(
    st: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let down = st.down.load(Ordering::SeqCst);
    let delay = st.delay_ms.load(Ordering::SeqCst);
    if delay > 0
        && matches!(
            req.uri().path(),
            "/.well-known/openid-configuration" | "/jwks"
        )
    {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    Ok(match req.uri().path() {
        "/.well-known/openid-configuration" if !down => answer(
            StatusCode::OK,
            json!({
                "issuer": st.url,
                "jwks_uri": format!("{}/jwks", st.url),
                "token_endpoint": format!("{}/token", st.url),
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256", "RS256"]
            }),
        ),
        "/jwks" => {
            st.jwks_fetches.fetch_add(1, Ordering::SeqCst);
            if down {
                answer(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "down"}))
            } else {
                answer(StatusCode::OK, st.keys.jwks.clone())
            }
        }
        // Sign-in for local runs: whoever asks is whoever they say.
        "/token" => {
            let mut sub = None;
            let mut ttl = 600i64;
            let now = chrono::Utc::now().timestamp();
            let mut claims = json!({"iss": st.url, "aud": AUDIENCE, "iat": now});
            for (k, v) in query(&req) {
                match k.as_str() {
                    "sub" => sub = Some(v),
                    "ttl" => ttl = v.parse().unwrap_or(600).clamp(1, 86_400),
                    "iss" | "iat" | "exp" | "nbf" => {}
                    _ => claims[k] = json!(v),
                }
            }
            match sub.filter(|s| !s.is_empty()) {
                None => answer(StatusCode::BAD_REQUEST, json!({"error": "sub is required"})),
                Some(sub) => {
                    claims["sub"] = json!(sub);
                    claims["exp"] = json!(now + ttl);
                    let mut header = Header::new(Algorithm::ES256);
                    header.kid = Some(ES_KID.into());
                    match jsonwebtoken::encode(&header, &claims, &st.keys.es) {
                        Ok(t) => answer(
                            StatusCode::OK,
                            json!({"id_token": t, "token_type": "Bearer", "expires_in": ttl}),
                        ),
                        Err(_) => {
                            answer(StatusCode::INTERNAL_SERVER_ERROR, json!({"error": "sign"}))
                        }
                    }
                }
            }
        }
        _ => answer(StatusCode::NOT_FOUND, json!({"error": "not found"})),
    })
}
