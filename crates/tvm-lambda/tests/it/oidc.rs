//! OIDC callers through the real bootstrap: tokens of the local issuer
//! (keys made at its start, discovery and JWKS on loopback) verified by the
//! `jwt` mode, claims of an HTTP API JWT authorizer, and the attacks: a
//! forged algorithm, a key id nobody published, times, audiences, issuers,
//! sizes, claims that try to break the template, the JWKS down.

use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tvm_devstack::oidc::{Issuer, AUDIENCE, ES_KID, RS_KID};
use tvm_devstack::proxy::Proxy;
use tvm_devstack::runtime::Lambda;
use tvm_devstack::testing::block_on_spawned;

use crate::gates::{post, ADMIN};
use crate::harness::*;

/// Two trusted issuers (each with a profile of its own), a third nobody
/// trusts, and one function instance in the jwt mode with a proxy of its own.
struct Oidc {
    issuer: Issuer,
    other: Issuer,
    stranger: Issuer,
    lambda: Lambda,
    proxy: Proxy,
}

pub const NOTES: &str = "browser-notes";
const PARTNER: &str = "partner-notes";

/// `examples/oidc/browser-notes.yaml`, for the local issuer.
pub fn notes_policy(issuer: &str) -> String {
    let example = tvm_devstack::stack::repo_root().join("examples/oidc/browser-notes.yaml");
    std::fs::read_to_string(example)
        .expect("the oidc example")
        .replace("https://id.example.com", issuer)
}

fn partner_policy(issuer: &str) -> String {
    format!(
        "profile: {PARTNER}\nrole_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant\nsession_tags: {{who: \"${{caller.subject}}+${{caller.subject}}+${{caller.subject}}\"}}\nrules:\n  - {{name: partners, effect: allow, issuers: [\"{issuer}\"], subjects: [\"user-*\"]}}\n"
    )
}

pub const JWT_MODE: &str = "apigw,sts,jwt";

fn oidc() -> &'static Oidc {
    static OIDC: OnceLock<Oidc> = OnceLock::new();
    shared();
    OIDC.get_or_init(|| {
        block_on_spawned(async {
            let (issuer, other, stranger) = (
                Issuer::start().await.expect("issuer"),
                Issuer::start().await.expect("issuer"),
                Issuer::start().await.expect("issuer"),
            );
            let ssm = aws_sdk_ssm::types::ParameterType::String;
            put_policy(NOTES, &notes_policy(&issuer.url()), ssm.clone()).await;
            put_policy(PARTNER, &partner_policy(&other.url()), ssm).await;
            let issuers = format!("{},{}", issuer.url(), other.url());
            let (lambda, proxy) = counted_lambda(&[
                ("TVM_IDENTITY_MODES", JWT_MODE),
                ("TVM_JWT_ISSUERS", &issuers),
                ("TVM_JWT_AUDIENCES", AUDIENCE),
            ])
            .await;
            Oidc {
                issuer,
                other,
                stranger,
                lambda,
                proxy,
            }
        })
    })
}

/// A vend of `profile` with `Authorization: Bearer <token>` and no IAM context.
pub fn bearer_vend(token: &str, profile: &str) -> Value {
    let mut e = v2(
        "POST",
        "/v1/credentials",
        None,
        Some(&json!({ "profile": profile })),
    );
    e["headers"]["authorization"] = json!(format!("Bearer {token}"));
    e
}

fn user(sub: &str) -> Value {
    json!({"sub": sub, "groups": ["notes-users"], "tenant": "acme"})
}

async fn vend(token: &str, profile: &str) -> Answer {
    call(&oidc().lambda, bearer_vend(token, profile)).await
}

pub fn policy_of(proxy: &Proxy, session_id: &str) -> String {
    assume_role_calls(&proxy.calls())
        .into_iter()
        .find(|c| c.param("SourceIdentity").as_deref() == Some(&format!("tvm-{session_id}")))
        .and_then(|c| c.param("Policy"))
        .expect("the vend's AssumeRole was recorded with a policy")
}

fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

#[test]
fn a_verified_token_vends_a_policy_scoped_to_its_subject_and_another_users_differs_only_in_its_id()
{
    oidc(); // started from the test thread, never inside the runtime
    run(async {
        let o = oidc();
        let alice = vend(&o.issuer.token(user("user-alice")), NOTES).await;
        assert_eq!(alice.status, 200, "{:?}", alice.body);
        let bob = vend(
            &o.issuer.sign(Algorithm::RS256, Some(RS_KID), &{
                let mut c = o.issuer.claims(600);
                c.as_object_mut()
                    .unwrap()
                    .extend(user("user-bob").as_object().unwrap().clone());
                c
            }),
            NOTES,
        )
        .await;
        assert_eq!(bob.status, 200, "RS256: {:?}", bob.body);
        let (sa, sb) = (
            alice.body["SessionId"].as_str().unwrap(),
            bob.body["SessionId"].as_str().unwrap(),
        );
        let (pa, pb) = (policy_of(&o.proxy, sa), policy_of(&o.proxy, sb));
        assert!(pa.contains("[\"user-alice\"]"), "{pa}");
        assert_eq!(pa.replace("user-alice", "user-bob"), pb);
        let item = session_item(sa).await;
        assert_eq!(
            s(&item, "caller"),
            format!("oidc:{}#user-alice", o.issuer.url())
        );
        assert!(
            !item.contains_key("account"),
            "an oidc caller has no account"
        );
    });
}

#[test]
fn forged_algorithms_unknown_keys_and_bad_times_audiences_and_sizes_are_401() {
    oidc(); // started from the test thread, never inside the runtime
    run(async {
        let o = oidc();
        let good = o.issuer.claims(600);
        let mut claims = good.clone();
        claims
            .as_object_mut()
            .unwrap()
            .extend(user("mallory").as_object().unwrap().clone());
        let header = |h: Value| b64(h.to_string().as_bytes());
        let payload = b64(claims.to_string().as_bytes());
        // alg none, unsigned.
        let none = format!(
            "{}.{payload}.",
            header(json!({"alg": "none", "kid": ES_KID}))
        );
        // HS256 keyed with the public key: as PKCS#1 DER, and as its JWK text.
        let hs = |secret: &[u8]| {
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some(RS_KID.into());
            jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(secret)).unwrap()
        };
        let jwk_text = o.issuer.jwks()["keys"][1].to_string();
        // A key id the issuer never published, and a missing one (it has two).
        let unknown_kid = o
            .issuer
            .sign(Algorithm::ES256, Some("rotated-away"), &claims);
        let no_kid = o.issuer.sign(Algorithm::ES256, None, &claims);
        // The RS256 key id with an ES256 signature.
        let wrong_alg = o.issuer.sign(Algorithm::ES256, Some(RS_KID), &claims);
        let with = |k: &str, v: Value| {
            let mut c = claims.clone();
            c[k] = v;
            o.issuer.sign(Algorithm::ES256, Some(ES_KID), &c)
        };
        let now = chrono::Utc::now().timestamp();
        // Signed by a trusted issuer's key, claiming another trusted issuer.
        let mut as_issuer = claims.clone();
        as_issuer["iss"] = json!(o.issuer.url());
        let cross = o.other.sign(Algorithm::ES256, Some(ES_KID), &as_issuer);
        // A valid token of an issuer nobody trusts.
        let mut strange = claims.clone();
        strange["iss"] = json!(o.stranger.url());
        let stranger = o.stranger.sign(Algorithm::ES256, Some(ES_KID), &strange);
        let oversized = with("pad", json!("x".repeat(9000)));
        let tampered = {
            let t = o.issuer.token(user("mallory"));
            let parts: Vec<&str> = t.split('.').collect();
            let mut c = claims.clone();
            c["sub"] = json!("user-alice");
            format!(
                "{}.{}.{}",
                parts[0],
                b64(c.to_string().as_bytes()),
                parts[2]
            )
        };
        let fetches = o.issuer.jwks_fetches();
        for (what, token, says) in [
            ("alg none", none, "algorithm"),
            (
                "HS256 keyed with the RSA public key",
                hs(o.issuer.rsa_public_der()),
                "algorithm",
            ),
            (
                "HS256 keyed with the JWK",
                hs(jwk_text.as_bytes()),
                "algorithm",
            ),
            ("unknown kid", unknown_kid, "key id"),
            ("no kid", no_kid, "key id"),
            (
                "an ES256 signature under the RS256 key id",
                wrong_alg,
                "algorithm",
            ),
            ("expired", with("exp", json!(now - 120)), "expired"),
            (
                "not yet valid",
                with("nbf", json!(now + 600)),
                "not valid yet",
            ),
            (
                "issued in the future",
                with("iat", json!(now + 600)),
                "future",
            ),
            (
                "a lifetime of two days",
                with("exp", json!(now + 2 * 86_400)),
                "24 hours",
            ),
            (
                "no exp",
                {
                    let mut c = claims.clone();
                    c.as_object_mut().unwrap().remove("exp");
                    o.issuer.sign(Algorithm::ES256, Some(ES_KID), &c)
                },
                "expiry",
            ),
            (
                "wrong audience",
                with("aud", json!("another-app")),
                "audience",
            ),
            ("a signature of another trusted issuer", cross, "signature"),
            ("an untrusted issuer", stranger, "issuer"),
            ("tampered claims", tampered, "signature"),
            ("oversized", oversized, "8192"),
            ("garbage", "not.a.jwt".to_string(), "header"),
        ] {
            let a = vend(&token, NOTES).await;
            assert_eq!(a.status, 401, "{what}: {:?}", a.body);
            let message = a.body["message"].as_str().unwrap_or_default();
            assert!(message.contains(says), "{what}: {message}");
            assert!(
                !message.contains(&token[..20.min(token.len())]),
                "{what}: the token is echoed"
            );
        }
        // Two made-up key ids cost the issuer at most one refetch; the
        // stranger's keys were never asked for.
        assert!(
            o.issuer.jwks_fetches() - fetches <= 1,
            "{} fetches",
            o.issuer.jwks_fetches() - fetches
        );
        assert_eq!(o.stranger.jwks_fetches(), 0);
    });
}

#[test]
fn a_token_arriving_while_the_cold_starts_key_fetch_runs_waits_for_it() {
    oidc(); // started from the test thread, never inside the runtime
    run(async {
        // 0.7 s for each of discovery and JWKS: the fetch started at cold
        // start is still under way when the first token arrives.
        let slow = Issuer::start().await.expect("issuer");
        slow.set_delay(Duration::from_millis(700));
        let policy = notes_policy(&slow.url())
            .replace(&format!("profile: {NOTES}"), "profile: slow-issuer-notes");
        let ssm = aws_sdk_ssm::types::ParameterType::String;
        put_policy("slow-issuer-notes", &policy, ssm).await;
        let lambda = own_lambda(&[
            ("TVM_IDENTITY_MODES", JWT_MODE),
            ("TVM_JWT_ISSUERS", &slow.url()),
            ("TVM_JWT_AUDIENCES", AUDIENCE),
        ])
        .await;
        let token = slow.token(user("user-early"));
        let a = call(&lambda, bearer_vend(&token, "slow-issuer-notes")).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        assert_eq!(slow.jwks_fetches(), 1, "one fetch, the cold start's");
        lambda.stop().await;
    });
}

#[test]
fn a_token_of_another_trusted_issuer_vends_only_its_own_profile() {
    oidc(); // started from the test thread, never inside the runtime
    run(async {
        let o = oidc();
        let mut c = o.other.claims(600);
        c.as_object_mut()
            .unwrap()
            .extend(user("user-alice").as_object().unwrap().clone());
        c["iss"] = json!(o.other.url());
        let token = o.other.sign(Algorithm::ES256, Some(ES_KID), &c);
        let a = vend(&token, NOTES).await;
        assert_eq!(a.status, 403, "{:?}", a.body);
        let a = vend(&token, PARTNER).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        // The same subject is another caller under another issuer.
        let item = session_item(a.body["SessionId"].as_str().unwrap()).await;
        assert_eq!(
            s(&item, "caller"),
            format!("oidc:{}#user-alice", o.other.url())
        );
    });
}

#[test]
fn claims_that_try_to_break_the_template_refuse_the_vend_and_a_deny_on_a_claim_wins() {
    oidc(); // started from the test thread, never inside the runtime
    run(async {
        let o = oidc();
        let before = assume_role_calls(&o.proxy.calls()).len();
        for (sub, tenant) in [
            ("user-x", r#"acme","Resource":"*"#),
            ("user-x", "*"),
            ("user-x", "${caller.subject}"),
            ("user|x", "acme"),
            ("user\"x", "acme"),
            ("user*", "acme"),
        ] {
            let a = vend(
                &o.issuer
                    .token(json!({"sub": sub, "groups": ["notes-users"], "tenant": tenant})),
                NOTES,
            )
            .await;
            assert_eq!(a.status, 403, "{sub} {tenant}: {:?}", a.body);
            assert!(
                a.body["message"]
                    .as_str()
                    .unwrap()
                    .contains("only [A-Za-z0-9_+=,.@-]"),
                "{:?}",
                a.body
            );
        }
        let a = vend(
            &o.issuer.token(json!({"sub": "user-s", "groups": ["notes-users"], "tenant": "acme", "status": "suspended"})),
            NOTES,
        )
        .await;
        assert_eq!(a.status, 403, "{:?}", a.body);
        let a = vend(
            &o.issuer
                .token(json!({"sub": "user-g", "groups": ["others"], "tenant": "acme"})),
            NOTES,
        )
        .await;
        assert_eq!(a.status, 403, "{:?}", a.body);
        // A subject within the value limit (128) that, rendered three times
        // into a tag, exceeds STS's 256: the caller's, a 403 that says so.
        let long = format!("user-{}", "l".repeat(123));
        let mut c = o.other.claims(600);
        c["sub"] = json!(long);
        let a = vend(&o.other.sign(Algorithm::ES256, Some(ES_KID), &c), PARTNER).await;
        assert_eq!(a.status, 403, "{:?}", a.body);
        assert_eq!(a.body["code"], "AccessDenied", "{:?}", a.body);
        let message = a.body["message"].as_str().unwrap();
        assert!(
            message.contains("tag who renders longer than 256"),
            "{message}"
        );
        assert!(message.contains("with shorter ones it fits"), "{message}");
        // None of them reached STS (other tests vend beside this one: by name).
        let refused = [
            "user-x.", "userx.", "user.", "user-s.", "user-g.", "user-lll",
        ];
        for c in &assume_role_calls(&o.proxy.calls())[before..] {
            let name = c.param("RoleSessionName").unwrap_or_default();
            assert!(
                !refused.iter().any(|r| name.starts_with(r)),
                "{name} was assumed"
            );
        }
    });
}

#[test]
fn a_revoked_oidc_caller_is_refused_and_another_subject_is_not() {
    oidc(); // started from the test thread, never inside the runtime
    run(async {
        let o = oidc();
        let carol = o.issuer.token(user("user-carol"));
        assert_eq!(vend(&carol, NOTES).await.status, 200);
        let principal = format!("oidc:{}#user-carol", o.issuer.url());
        let a = post(
            &o.lambda,
            ADMIN,
            "/v1/callers/revoke",
            json!({"principal": principal, "reason": "oidc revocation test"}),
        )
        .await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        let a = vend(&carol, NOTES).await;
        assert_eq!(
            (a.status, a.code()),
            (403, "SessionRevoked"),
            "{:?}",
            a.body
        );
        assert_eq!(
            vend(&o.issuer.token(user("user-dave")), NOTES).await.status,
            200
        );
    });
}

#[test]
fn an_api_gateway_jwt_authorizers_claims_are_a_caller_held_to_the_trusted_issuers() {
    oidc(); // started from the test thread, never inside the runtime
    run(async {
        let o = oidc();
        let authorized = |iss: &str, sub: &str| {
            let mut e = v2(
                "POST",
                "/v1/credentials",
                None,
                Some(&json!({ "profile": NOTES })),
            );
            let exp = (chrono::Utc::now().timestamp() + 600).to_string();
            // As API Gateway hands them over: every value a string, lists as [a b].
            e["requestContext"]["authorizer"] = json!({"jwt": {"claims": {
                "iss": iss, "sub": sub, "aud": AUDIENCE, "exp": exp,
                "groups": "[other notes-users]", "tenant": "acme"}, "scopes": null}});
            e
        };
        let a = call(&o.lambda, authorized(&o.issuer.url(), "user-erin")).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        let policy = policy_of(&o.proxy, a.body["SessionId"].as_str().unwrap());
        assert!(policy.contains("[\"user-erin\"]"), "{policy}");
        let a = call(&o.lambda, authorized(&o.stranger.url(), "user-erin")).await;
        assert_eq!(a.status, 401, "{:?}", a.body);
    });
}

#[test]
fn with_the_jwks_down_cached_keys_serve_only_within_their_age_then_it_fails_closed() {
    run(async {
        let issuer = Issuer::start().await.unwrap();
        put_policy(
            "jwks-down",
            &partner_policy(&issuer.url()).replace(PARTNER, "jwks-down"),
            aws_sdk_ssm::types::ParameterType::String,
        )
        .await;
        let lambda = own_lambda(&[
            ("TVM_IDENTITY_MODES", JWT_MODE),
            ("TVM_JWT_ISSUERS", &issuer.url()),
            ("TVM_JWT_AUDIENCES", AUDIENCE),
            ("TVM_JWKS_MAX_AGE_SECONDS", "2"),
        ])
        .await;
        let token = issuer.token(json!({"sub": "user-f"}));
        let a = call(&lambda, bearer_vend(&token, "jwks-down")).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        issuer.set_down(true);
        // Within its age the cached key verifies.
        let a = call(&lambda, bearer_vend(&token, "jwks-down")).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        // Past it, nothing verifies: 503, a dependency failure, no credentials.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let a = call(&lambda, bearer_vend(&token, "jwks-down")).await;
        assert_eq!(
            (a.status, a.code()),
            (503, "DependencyFailed"),
            "{:?}",
            a.body
        );
        assert!(a.body.get("AccessKeyId").is_none());
        let logs = lambda.logs().join("\n");
        assert!(logs.contains("\"dependency\":\"jwks\""), "no jwks line");
        // Refused at once while it stays down: no fetch (and wait) per token.
        let fetches = issuer.jwks_fetches();
        for _ in 0..5 {
            let a = call(&lambda, bearer_vend(&token, "jwks-down")).await;
            assert_eq!(a.status, 503, "{:?}", a.body);
        }
        assert!(issuer.jwks_fetches() - fetches <= 1, "a fetch per token");
        // Back up, tvm recovers within its back-off (a bounded poll).
        issuer.set_down(false);
        let mut status = 0;
        for _ in 0..40 {
            status = call(&lambda, bearer_vend(&token, "jwks-down")).await.status;
            if status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status, 200, "tvm did not recover with the issuer back");
        lambda.stop().await;
    });
}
