//! The trust model v2's attacks, through the real bootstrap on moto: who may
//! be a caller at all (other accounts, federated users, user paths, sessions
//! tvm vended), what an approval approves (one person's one request), how
//! long a grant lasts (its window, its approval, its break-glass event), and
//! what no answer or log line may give away. Each failed on the main before
//! it; docs/security.md lists them. The profiles here are this file's own
//! (`trust*`) and so are their callers, so revoking them blocks nothing else.

use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;
use chrono::Timelike;
use serde_json::{json, Value};
use tvm_devstack::runtime::Lambda;
use tvm_devstack::stack::sdk_config;

use crate::gates::{get, post, revocation_policy, ADMIN};
use crate::harness::*;

const TRUST: &str = r#"
profile: trust
role_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant
duration: {default: 900, max: 3600}
session_tags: {who: "${who}"}
rules:
  - {name: analysts, effect: allow, accounts: ["123456789012"], user_names: ["analyst-*"], bind: {who: "${caller.name}"}}
  - {name: partners, effect: allow, accounts: ["123456789012"], kinds: [federated-user], user_names: ["partner-*"], bind: {who: "${caller.name}"}}
  - {name: users, effect: allow, principals: ["arn:aws:iam::123456789012:user/trust-*"], bind: {who: "${caller.name}"}}
  - {name: fed-glob, effect: allow, principals: ["arn:aws:sts::123456789012:federated-user/glob-*"], bind: {who: "${caller.name}"}}
  - {name: any-role, effect: allow, principals: ["arn:aws:sts::123456789012:assumed-role/*/*"], bind: {who: "${caller.name}"}}
  - {name: chained, effect: allow, allow_vended_sessions: true, principals: ["arn:aws:sts::123456789012:assumed-role/reports-readonly/*"], bind: {who: "${caller.name}"}}
"#;

const GATED: &str = r#"
profile: trust-gated
role_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant
duration: {default: 900, max: 1800}
session_tags: {tenant: "${tenant}"}
rules:
  - {name: humans, effect: require_approval, principals: ["arn:aws:sts::123456789012:assumed-role/trust-dev/*"],
     attributes: {tenant: {pattern: "t-*"}}, bind: {tenant: "${attr.tenant}"}}
  - {name: oncall, effect: break_glass, principals: ["arn:aws:sts::123456789012:assumed-role/trust-oncall/*"],
     bind: {tenant: "${caller.session_name}"}}
approval:
  approvers: ["arn:aws:sts::123456789012:assumed-role/trust-sec/*", "arn:aws:sts::123456789012:assumed-role/trust-audit/*",
              "arn:aws:sts::123456789012:assumed-role/*-tenant/*"]
  required: 2
  ttl: 3600
break_glass:
  principals: ["arn:aws:sts::123456789012:assumed-role/trust-oncall/*"]
  max_duration: 1800
  min_justification: 20
"#;

fn role(role: &str, session: &str) -> String {
    format!("arn:aws:sts::123456789012:assumed-role/{role}/{session}")
}

/// A function instance that has loaded the trust profiles (and `extra`).
async fn trust_lambda(extra: &[(&str, &str)]) -> Lambda {
    put_policy("trust", TRUST, ParameterType::String).await;
    put_policy("trust-gated", GATED, ParameterType::String).await;
    for (name, text) in extra {
        put_policy(name, text, ParameterType::String).await;
    }
    own_lambda(&[]).await
}

async fn vend_as(lambda: &Lambda, caller: &str, body: Value) -> Answer {
    call(lambda, vend_event(caller, body)).await
}

async fn revoke_caller(lambda: &Lambda, principal: &str) {
    let body = json!({"principal": principal, "reason": "trust model attack test", "duration_seconds": 900});
    let a = post(lambda, ADMIN, "/v1/callers/revoke", body).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
}

/// Call, and the request's decision line.
async fn call_decided(lambda: &Lambda, event: Value) -> (Answer, Value) {
    let id = event["requestContext"]["requestId"]
        .as_str()
        .unwrap()
        .to_string();
    let a = call(lambda, event).await;
    (a, decision_for(lambda, &id).await)
}

/// Poll the function's log (bounded) for a line containing `needle`.
async fn log_line(lambda: &Lambda, needle: &str) -> Option<String> {
    for _ in 0..500 {
        if let Some(l) = lambda.logs().into_iter().find(|l| l.contains(needle)) {
            return Some(l);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[test]
fn the_sts_mode_serves_no_account_it_was_not_told_to_serve() {
    run(async {
        // Without TVM_ALLOWED_ACCOUNTS the function refuses to start.
        let lambda = own_lambda(&[("TVM_ALLOWED_ACCOUNTS", "")]).await;
        let line = log_line(&lambda, "refusing to start").await;
        assert!(
            line.as_deref()
                .is_some_and(|l| l.contains("TVM_ALLOWED_ACCOUNTS")),
            "{line:?}"
        );
        lambda.stop().await;

        // A stranger's account signs a valid presigned GetCallerIdentity.
        let sh = shared();
        let sts = aws_sdk_sts::Client::new(&sdk_config(
            &sh.stack.moto.url(),
            sh.stack.ids.caller.credentials(),
        ));
        let out = sts
            .assume_role()
            .role_arn("arn:aws:iam::999999999999:role/stranger")
            .role_session_name("mallory")
            .send()
            .await
            .expect("moto assumes into another account");
        let c = out.credentials().unwrap();
        let creds = aws_credential_types::Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            None,
            "stranger",
        );
        let header = signed_identity(&creds);
        let e = presigned_vend(&header, "orders-tenant");
        let (a, d) = call_decided(&sh.lambda, e).await;
        assert_eq!((a.status, a.code()), (403, "AccessDenied"), "{:?}", a.body);
        assert_eq!(
            d["caller"],
            "arn:aws:sts::999999999999:assumed-role/stranger/mallory"
        );
        assert!(d["reason"]
            .as_str()
            .unwrap()
            .contains("TVM_ALLOWED_ACCOUNTS"));

        // A policy whose globs would admit any account is never served.
        let open = "profile: trust-open\nrole_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant\nrules:\n  - {name: anyone, effect: allow, principals: ['arn:aws:sts::*:assumed-role/orders-task/*']}\n";
        let approver = "profile: trust-open-approver\nrole_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant\nrules:\n  - {name: h, effect: require_approval, accounts: ['123456789012'], role_names: [dev]}\napproval: {approvers: ['arn:aws:sts::*:assumed-role/Sec/*']}\n";
        let lambda = trust_lambda(&[("trust-open", open), ("trust-open-approver", approver)]).await;
        for profile in ["trust-open", "trust-open-approver"] {
            let a = vend_as(
                &lambda,
                &format!("{TASK}acme"),
                json!({ "profile": profile }),
            )
            .await;
            assert_eq!((a.status, a.code()), (403, "AccessDenied"), "{profile}");
        }
        assert!(log_line(&lambda, "must pin the account").await.is_some());
        lambda.stop().await;
        delete_policy("trust-open").await;
        delete_policy("trust-open-approver").await;
    });
}

#[test]
fn a_federated_name_is_nobody_and_a_user_path_is_the_same_user() {
    run(async {
        let lambda = trust_lambda(&[]).await;
        // An IAM user calls GetFederationToken with a name an allow rule likes.
        let fake_analyst = "arn:aws:sts::123456789012:federated-user/analyst-x";
        let a = vend_as(&lambda, fake_analyst, json!({"profile": "trust"})).await;
        assert_eq!((a.status, a.code()), (403, "AccessDenied"), "{:?}", a.body);
        // Nor does a principals glob on federated names, without the opt-in.
        let globbed = vend_as(
            &lambda,
            "arn:aws:sts::123456789012:federated-user/glob-evil",
            json!({"profile": "trust"}),
        )
        .await;
        assert_eq!(globbed.code(), "AccessDenied", "{:?}", globbed.body);
        // A rule that says kinds: [federated-user] means it.
        let partner = "arn:aws:sts::123456789012:federated-user/partner-1";
        assert_eq!(
            vend_as(&lambda, partner, json!({"profile": "trust"}))
                .await
                .status,
            200
        );
        // Revoking one federated name revokes every name its account can choose.
        revoke_caller(&lambda, partner).await;
        let renamed = vend_as(
            &lambda,
            "arn:aws:sts::123456789012:federated-user/partner-2",
            json!({"profile": "trust"}),
        )
        .await;
        assert_eq!(renamed.code(), "SessionRevoked", "{:?}", renamed.body);

        // user/trust-pat and user/ops/trust-pat are one user.
        let pathed = "arn:aws:iam::123456789012:user/ops/trust-pat";
        assert_eq!(
            vend_as(&lambda, pathed, json!({"profile": "trust"}))
                .await
                .status,
            200
        );
        // Without the path, and in another case (names are unique without case).
        revoke_caller(&lambda, "arn:aws:iam::123456789012:user/Trust-Pat").await;
        let again = vend_as(&lambda, pathed, json!({"profile": "trust"})).await;
        assert_eq!(again.code(), "SessionRevoked", "{:?}", again.body);
        lambda.stop().await;
    });
}

#[test]
fn a_session_of_a_profile_gone_from_the_set_still_cannot_act_as_a_person() {
    run(async {
        // The only profile of its role: with it gone, no loaded profile
        // names the role.
        let profile = "trust-lonely";
        let doc = "profile: trust-lonely\nrole_arn: arn:aws:iam::123456789012:role/tvm/trust-lonely-role\nrules:\n  - {name: a, effect: allow, principals: ['arn:aws:sts::123456789012:assumed-role/trust-lonely-task/*']}\n";
        put_policy(profile, doc, ParameterType::String).await;
        let lambda = own_lambda(&[("TVM_POLICY_TTL_SECONDS", "1")]).await;
        let caller = role("trust-lonely-task", "lona");
        let v = vend_as(&lambda, &caller, json!({"profile": profile})).await;
        assert_eq!(v.status, 200, "{:?}", v.body);
        let sid = v.body["SessionId"].as_str().unwrap();
        let vended = role("trust-lonely-role", &format!("lona.{sid}"));
        // Refused as a vended session: the decision line says why.
        let refused = |who: String| {
            let lambda = &lambda;
            async move {
                let (a, d) =
                    call_decided(lambda, v2("GET", "/v1/sessions", Some(&who), None)).await;
                a.status == 403
                    && d["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains("may only vend"))
            }
        };
        assert!(refused(vended.clone()).await);
        // The profile goes (deleted; a signed deployment refusing a planted
        // document drops it the same way).
        delete_policy(profile).await;
        let mut gone = false;
        for _ in 0..40 {
            if vend_as(&lambda, &caller, json!({"profile": profile}))
                .await
                .status
                == 403
            {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(gone, "the function dropped the deleted profile");
        assert!(refused(vended.clone()).await, "still a vended session");
        // A name that only looks like a vend's (no record of it) is a person.
        let lookalike = role("trust-lonely-role", &format!("lona.{}", "0".repeat(32)));
        let listed = get(&lambda, &lookalike, "/v1/sessions").await;
        assert_eq!(listed.status, 200, "{:?}", listed.body);
        lambda.stop().await;
    });
}

#[test]
fn a_session_tvm_vended_cannot_vend_again_or_approve() {
    run(async {
        let lambda = trust_lambda(&[]).await;
        // Real credentials from tvm, presented back to tvm as a presigned identity.
        let sh = shared();
        let task = sh.stack.task_credentials("trust-chain").await.unwrap();
        let first = call(
            &lambda,
            presigned_vend(&signed_identity(&task), "orders-tenant"),
        )
        .await;
        assert_eq!(first.status, 200, "{:?}", first.body);
        let b = &first.body;
        let vended = aws_credential_types::Credentials::new(
            b["AccessKeyId"].as_str().unwrap(),
            b["SecretAccessKey"].as_str().unwrap(),
            b["SessionToken"].as_str().map(str::to_string),
            None,
            "vended",
        );
        // The vended session matches the trust profile's any-role rule...
        let (chained, d) =
            call_decided(&lambda, presigned_vend(&signed_identity(&vended), "trust")).await;
        assert_eq!(
            (chained.status, chained.code()),
            (403, "AccessDenied"),
            "{:?}",
            chained.body
        );
        assert!(d["caller"]
            .as_str()
            .unwrap()
            .contains(":assumed-role/orders-tenant/trust-chain."));
        assert!(d["reason"].as_str().unwrap().contains("vended"), "{d}");

        // ...and an approver glob that matches it confers nothing either.
        let dev = role("trust-dev", "vera");
        let r = post(
            &lambda,
            &dev,
            "/v1/requests",
            json!({"profile": "trust-gated", "justification": "ticket 4711 needs data", "attributes": {"tenant": "t-1"}}),
        )
        .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let path = format!("/v1/requests/{}/approve", r.body["id"].as_str().unwrap());
        let vended_arn = d["caller"].as_str().unwrap().to_string();
        let a = post(&lambda, &vended_arn, &path, json!({})).await;
        assert_eq!((a.status, a.code()), (403, "AccessDenied"), "{:?}", a.body);

        // A rule that opts in (allow_vended_sessions) lets a chain through,
        // for a session tvm really vended (its name ends with its vend's id).
        let reports = "profile: trust-reports\nrole_arn: arn:aws:iam::123456789012:role/tvm/reports-readonly\nrules: [{name: r, effect: allow, principals: ['arn:aws:sts::123456789012:assumed-role/trust-reporter/*']}]\n";
        put_policy("trust-reports", reports, ParameterType::String).await;
        let lambda2 = trust_lambda(&[]).await;
        let report = vend_as(
            &lambda2,
            &role("trust-reporter", "rita"),
            json!({"profile": "trust-reports"}),
        )
        .await;
        assert_eq!(report.status, 200, "{:?}", report.body);
        let session = format!("rita.{}", report.body["SessionId"].as_str().unwrap());
        let opted = vend_as(
            &lambda2,
            &role("reports-readonly", &session),
            json!({"profile": "trust"}),
        )
        .await;
        assert_eq!(opted.status, 200, "{:?}", opted.body);
        let forged = vend_as(
            &lambda2,
            &role("reports-readonly", "chain.0123abcd"),
            json!({"profile": "trust"}),
        )
        .await;
        assert_eq!(
            forged.code(),
            "AccessDenied",
            "no vend of that role has that id"
        );
        delete_policy("trust-reports").await;
        lambda2.stop().await;
        lambda.stop().await;
    });
}

#[test]
fn an_approval_is_one_persons_request_with_its_bindings() {
    run(async {
        let lambda = trust_lambda(&[]).await;
        let alice = role("trust-dev", "alice");
        let asked = json!({"profile": "trust-gated", "justification": "ticket 4712: fix tenant data", "attributes": {"tenant": "t-1"}});
        let r = post(&lambda, &alice, "/v1/requests", asked).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        assert_eq!(r.body["caller_arn"], alice.as_str());
        assert_eq!(r.body["bindings"], json!({"tenant": "t-1"}));
        assert_eq!(r.body["attributes"], json!({"tenant": "t-1"}));
        let id = r.body["id"].as_str().unwrap().to_string();
        let approve = format!("/v1/requests/{id}/approve");
        // Another person of the requester's role neither sees nor withdraws it.
        let mallory = role("trust-dev", "mallory");
        let peek = get(&lambda, &mallory, &format!("/v1/requests/{id}")).await;
        assert_eq!(peek.status, 404, "{:?}", peek.body);
        let cancel = post(
            &lambda,
            &mallory,
            &format!("/v1/requests/{id}/cancel"),
            json!({}),
        )
        .await;
        assert_eq!(cancel.status, 404, "{:?}", cancel.body);

        // The requester under another permission set, in any case, is refused.
        for me in [role("trust-sec", "alice"), role("trust-audit", "ALICE")] {
            let a = post(&lambda, &me, &approve, json!({})).await;
            assert_eq!((a.status, a.code()), (403, "AccessDenied"), "{me}");
        }
        // The approvers see what they approve.
        let seen = get(
            &lambda,
            &role("trust-sec", "bob"),
            &format!("/v1/requests/{id}"),
        )
        .await;
        assert_eq!(seen.body["bindings"], json!({"tenant": "t-1"}));
        // One person under two roles is counted once.
        let one = post(&lambda, &role("trust-sec", "bob"), &approve, json!({})).await;
        assert_eq!(one.body["status"], "pending", "{:?}", one.body);
        let twice = post(&lambda, &role("trust-audit", "bob"), &approve, json!({})).await;
        assert_eq!((twice.status, twice.code()), (409, "Conflict"));
        let done = post(&lambda, &role("trust-audit", "carol"), &approve, json!({})).await;
        assert_eq!(done.body["status"], "approved", "{:?}", done.body);
        assert_eq!(done.body["approvals"], json!(["bob", "carol"]));

        // Another person in the same permission set is not approved.
        let mallory = vend_as(
            &lambda,
            &mallory,
            json!({"profile": "trust-gated", "attributes": {"tenant": "t-1"}}),
        )
        .await;
        assert_eq!(mallory.code(), "ApprovalRequired", "{:?}", mallory.body);
        assert_ne!(mallory.body["approval_request_id"], id.as_str());
        // The requester, for another tenant, is not approved either.
        let other = vend_as(
            &lambda,
            &alice,
            json!({"profile": "trust-gated", "attributes": {"tenant": "t-2"}}),
        )
        .await;
        assert_eq!(
            (other.status, other.code()),
            (403, "AccessDenied"),
            "{:?}",
            other.body
        );
        assert!(other.body["message"]
            .as_str()
            .unwrap()
            .contains("other attributes"));
        // The requester with what was approved vends.
        let granted = vend_as(
            &lambda,
            &alice,
            json!({"profile": "trust-gated", "attributes": {"tenant": "t-1"}}),
        )
        .await;
        assert_eq!(granted.status, 200, "{:?}", granted.body);
        lambda.stop().await;
    });
}

/// `HH:MM` of `minutes` after midnight UTC, wrapping.
fn hhmm(minutes: i64) -> String {
    let m = minutes.rem_euclid(1440);
    format!("{:02}:{:02}", m / 60, m % 60)
}

#[test]
fn a_grant_ends_with_the_window_the_approval_or_the_event_that_allowed_it() {
    run(async {
        let now = chrono::Utc::now();
        let minute = i64::from(now.hour() * 60 + now.minute());
        let window = |end_in: i64| {
            format!(
                "profile: trust-window-{end_in}\nrole_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant\nduration: {{default: 3600, max: 3600}}\nrules:\n  - {{name: office, effect: allow, principals: ['arn:aws:sts::123456789012:assumed-role/trust-window/*'], time: {{hours: '{}-{}'}}}}\n",
                hhmm(minute - 60),
                hhmm(minute + end_in)
            )
        };
        let freeze = format!(
            "profile: trust-freeze\nrole_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant\nduration: {{default: 3600, max: 3600}}\nrules:\n  - {{name: always, effect: allow, principals: ['arn:aws:sts::123456789012:assumed-role/trust-window/*']}}\n  - {{name: freeze, effect: deny, principals: ['*'], time: {{hours: '{}-{}'}}}}\n",
            hhmm(minute + 21),
            hhmm(minute + 81)
        );
        let (w21, w10) = (window(21), window(10));
        let lambda = trust_lambda(&[
            ("trust-window-21", &w21),
            ("trust-window-10", &w10),
            ("trust-freeze", &freeze),
        ])
        .await;
        let caller = role("trust-window", "wanda");
        for profile in ["trust-window-21", "trust-freeze"] {
            let (a, d) = call_decided(
                &lambda,
                vend_event(
                    &caller,
                    json!({"profile": profile, "duration_seconds": 3600}),
                ),
            )
            .await;
            assert_eq!(a.status, 200, "{profile}: {:?}", a.body);
            let granted = d["duration_seconds"].as_u64().unwrap();
            assert!(
                (1140..=1260).contains(&granted),
                "{profile}: {granted} s granted; the window ends in about 20 minutes"
            );
        }
        let short = vend_as(&lambda, &caller, json!({"profile": "trust-window-10"})).await;
        assert_eq!(
            (short.status, short.code()),
            (403, "AccessDenied"),
            "{:?}",
            short.body
        );
        assert!(short.body["message"].as_str().unwrap().contains("900"));

        // Closing a break-glass event revokes what it vended.
        let oncall = role("trust-oncall", "olga");
        let bg = json!({"profile": "trust-gated", "reason": "incident", "justification": "orders table corrupt after deploy"});
        let event = post(&lambda, &oncall, "/v1/breakglass", bg).await;
        assert_eq!(event.status, 201, "{:?}", event.body);
        let v = vend_as(&lambda, &oncall, json!({"profile": "trust-gated"})).await;
        assert_eq!(v.status, 200, "{:?}", v.body);
        let sid = v.body["SessionId"].as_str().unwrap().to_string();
        let close = format!(
            "/v1/breakglass/{}/close",
            event.body["id"].as_str().unwrap()
        );
        // Another person of the opener's role neither lists nor closes it.
        let oscar = role("trust-oncall", "oscar");
        let listed = get(&lambda, &oscar, "/v1/breakglass").await;
        assert!(!listed
            .body
            .to_string()
            .contains(event.body["id"].as_str().unwrap()));
        assert_eq!(post(&lambda, &oscar, &close, json!({})).await.status, 404);
        let closed = post(&lambda, &oncall, &close, json!({})).await;
        assert_eq!(closed.status, 200, "{:?}", closed.body);
        assert_eq!(s(&session_item(&sid).await, "status"), "revoked");
        // One entry on the event's transitive tag denies all it vended.
        let tag = format!("break_glass:{}", event.body["id"].as_str().unwrap());
        assert!(revocation_policy().await.contains(&tag));
        lambda.stop().await;
        for p in ["trust-window-21", "trust-window-10", "trust-freeze"] {
            delete_policy(p).await;
        }
    });
}

#[test]
fn an_unknown_profile_and_a_forbidden_one_answer_alike_whatever_the_request() {
    run(async {
        let lambda = trust_lambda(&[]).await;
        let root = "arn:aws:iam::123456789012:root";
        for extra in [
            json!({}),
            json!({"duration_seconds": 100}),
            json!({"duration_seconds": 7200}),
            json!({"attributes": {"tenant": "t-1"}}),
        ] {
            let body = |profile: &str| {
                let mut b = extra.clone();
                b["profile"] = json!(profile);
                b
            };
            let unknown = vend_as(&lambda, root, body("trust-nonexistent")).await;
            let forbidden = vend_as(&lambda, root, body("trust-gated")).await;
            assert_eq!(unknown.status, forbidden.status, "{extra}");
            assert_eq!(unknown.code(), forbidden.code(), "{extra}");
            let message = |a: &Answer| {
                a.body["message"]
                    .as_str()
                    .unwrap()
                    .replace("trust-nonexistent", "P")
                    .replace("trust-gated", "P")
            };
            assert_eq!(message(&unknown), message(&forbidden), "{extra}");
            assert_eq!(unknown.headers, forbidden.headers, "{extra}");
        }
        lambda.stop().await;
    });
}

#[test]
fn no_log_level_prints_the_callers_secrets_or_the_credentials() {
    run(async {
        let sh = shared();
        let lambda = own_lambda(&[("RUST_LOG", "trace")]).await;
        let creds = sh.stack.task_credentials("trust-trace").await.unwrap();
        let header = signed_identity(&creds);
        let mut e = presigned_vend(&header, "orders-tenant");
        e["headers"]["authorization"] = json!("AWS4-HMAC-SHA256 Credential=AKIATRACE/x, SignedHeaders=host, Signature=1111111111111111111111111111111111111111111111111111111111111111");
        e["headers"]["x-amz-security-token"] = json!("TRACE-LEVEL-CALLER-TOKEN");
        // `call` fails the test if the vended credentials reach the log.
        let a = call(&lambda, e).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        let logs = lambda.logs().join("\n");
        assert!(logs.contains("\"decision\""), "tracing is on");
        for secret in [
            header.as_str(),
            "Signature=1111111111111111111111111111111111111111111111111111111111111111",
            "TRACE-LEVEL-CALLER-TOKEN",
            creds.secret_access_key(),
            creds.session_token().unwrap(),
        ] {
            assert!(
                !logs.contains(secret),
                "logged at trace: {}",
                &secret[..16.min(secret.len())]
            );
        }
        lambda.stop().await;
    });
}

/// A vend that read its break-glass event as open, racing the event's close:
/// its record requires the event still open in the same transaction, so it
/// is refused rather than recorded after the close listed what to revoke.
/// The vending instance's DynamoDB calls are held 3 s at its proxy; the close
/// runs on another instance while the record is held.
#[test]
fn a_vend_racing_the_close_of_its_break_glass_event_is_refused() {
    run(async {
        use tvm_devstack::proxy::Fault;
        let closer = trust_lambda(&[]).await;
        let (slow, proxy) = counted_lambda(&[("TVM_AWS_TIMEOUT_MS", "20000")]).await;
        let olga = role("trust-oncall", "olga-race");
        let bg = json!({"profile": "trust-gated", "reason": "incident", "justification": "orders table corrupt after deploy"});
        let event = post(&closer, &olga, "/v1/breakglass", bg).await;
        assert_eq!(event.status, 201, "{:?}", event.body);
        proxy.set_fault("dynamodb", Some(Fault::Delay(Duration::from_secs(3))));
        let vender = olga.clone();
        let vend = tokio::spawn(async move {
            let a = vend_as(&slow, &vender, json!({"profile": "trust-gated"})).await;
            (a, slow)
        });
        // The gate read has answered (open): the record is now held.
        let mut read = false;
        for _ in 0..1000 {
            if proxy.calls().iter().any(|c| c.action == "BatchGetItem") {
                read = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(read, "the vend never read its gates");
        let close = format!(
            "/v1/breakglass/{}/close",
            event.body["id"].as_str().unwrap()
        );
        let closed = post(&closer, &olga, &close, json!({})).await;
        assert_eq!(closed.status, 200, "{:?}", closed.body);
        let (v, slow) = vend.await.unwrap();
        proxy.set_fault("dynamodb", None);
        assert_eq!((v.status, v.code()), (403, "AccessDenied"), "{:?}", v.body);
        assert!(v.body["message"].as_str().unwrap().contains("just ended"));
        slow.stop().await;
        closer.stop().await;
    });
}
