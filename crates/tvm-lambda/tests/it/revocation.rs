//! Revocation v2 against the real bootstrap on moto: another account through
//! its revoker, 500 sessions in one constant-size statement, a chained
//! session, a fault at every step, an account without a revoker, a full
//! policy. moto evaluates no condition: the tests evaluate the stored
//! policy documents against contexts built from the recorded requests
//! (`aws_rules`). The profiles and callers here are this file's own (`rev*`).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use serde_json::{json, Value};
use tvm_devstack::proxy::{Call, Fault, Proxy};
use tvm_devstack::runtime::Lambda;
use tvm_devstack::stack::{ACCOUNT, OTHER_ACCOUNT};

use crate::aws_rules::{beyond_aws_limits, denied_by, Context};
use crate::gates::{get, post, ADMIN};
use crate::harness::*;
use crate::revocation_kit::{caller, isolated, lambda_in, sid, vended_context};

const REV: &str = r#"
profile: rev
role_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant
rate_limit: {requests: 1000, per_seconds: 60}
rules:
  - {name: rev-roles, effect: allow, principals: ["arn:aws:sts::123456789012:assumed-role/rev-*/*"]}
"#;

/// `rev` with approvers, who may revoke its sessions (not the security team).
const REV_APPROVED: &str = r#"
profile: rev
role_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant
rate_limit: {requests: 1000, per_seconds: 60}
rules:
  - {name: rev-roles, effect: allow, principals: ["arn:aws:sts::123456789012:assumed-role/rev-*/*"]}
approval: {approvers: ["arn:aws:sts::123456789012:assumed-role/rev-approver/*"], required: 1, ttl: 3600}
"#;
const REV_APPROVER: &str = "arn:aws:sts::123456789012:assumed-role/rev-approver/ann";

/// A profile whose role is in the other account.
const REV_OTHER: &str = r#"
profile: rev-other
role_arn: arn:aws:iam::210987654321:role/tvm/orders-tenant
rules:
  - {name: rev-x, effect: allow, principals: ["arn:aws:sts::123456789012:assumed-role/revx-*/*"]}
"#;

/// A function instance with its own proxy that has loaded the `rev` profiles.
async fn rev_lambda(extra: &[(&str, &str)]) -> (Lambda, Proxy) {
    use aws_sdk_ssm::types::ParameterType::String as Plain;
    put_policy("rev", REV, Plain).await;
    put_policy("rev-other", REV_OTHER, Plain).await;
    counted_lambda(extra).await
}

async fn vend_rev(lambda: &Lambda, who: &str, profile: &str) -> Answer {
    let a = call(lambda, vend_event(who, json!({"profile": profile}))).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    a
}

async fn revoke_session(lambda: &Lambda, id: &str) -> Answer {
    post(
        lambda,
        ADMIN,
        &format!("/v1/sessions/{id}/revoke"),
        json!({"reason": "revocation v2 test"}),
    )
    .await
}

async fn revoke_caller(lambda: &Lambda, principal: &str, extra: Value) -> Answer {
    let mut body = json!({"principal": principal, "reason": "revocation v2 test"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    post(lambda, ADMIN, "/v1/callers/revoke", body).await
}

/// The recorded AssumeRole of a vend, by its SourceIdentity.
fn assume_of(calls: &[Call], session_id: &str) -> Call {
    assume_role_calls(calls)
        .into_iter()
        .find(|c| c.param("SourceIdentity").as_deref() == Some(&format!("tvm-{session_id}")))
        .expect("the vend's AssumeRole was recorded")
}

async fn gate_item(key: &str) -> Option<HashMap<String, AttributeValue>> {
    gate_item_in("tvm-sessions", key).await
}

async fn gate_item_in(table: &str, key: &str) -> Option<HashMap<String, AttributeValue>> {
    aws_sdk_dynamodb::Client::new(&sdk())
        .get_item()
        .table_name(table)
        .key("session_id", AttributeValue::S(key.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[test]
fn a_session_of_another_accounts_role_is_denied_in_that_account_and_nothing_is_overwritten() {
    run(async {
        let (lambda, proxy) = rev_lambda(&[]).await;
        let local = vend_rev(&lambda, &caller("rev-local", "s1"), "rev").await;
        assert_eq!(revoke_session(&lambda, &sid(&local)).await.status, 200);

        let other = vend_rev(&lambda, &caller("revx-1", "s1"), "rev-other").await;
        let vend = assume_of(&proxy.calls(), &sid(&other));
        assert_eq!(
            vend.param("RoleArn").unwrap(),
            "arn:aws:iam::210987654321:role/tvm/orders-tenant"
        );
        let mark = proxy.mark();
        let a = revoke_session(&lambda, &sid(&other)).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        let calls = proxy.calls_since(mark);
        assert_eq!(beyond_aws_limits(&calls), Vec::<String>::new());
        // Written through the other account's revoker, into its policy.
        // (The instance assumed every account's revoker on its first revocation.)
        assert!(assume_role_calls(&proxy.calls()).iter().any(|c| {
            c.param("RoleArn").as_deref() == Some("arn:aws:iam::210987654321:role/tvm/tvm-revoker")
        }));
        // Only the accounts' revocation policies are ever written (a write
        // may be skipped where a concurrent revocation already wrote a state
        // that holds this one).
        let written: Vec<String> = proxy
            .calls()
            .iter()
            .filter(|c| c.service == "iam" && c.action != "ListPolicyVersions")
            .filter_map(|c| c.param("PolicyArn"))
            .collect();
        for arn in &written {
            assert!(
                [ACCOUNT, OTHER_ACCOUNT]
                    .iter()
                    .any(|a| *arn == format!("arn:aws:iam::{a}:policy/tvm/tvm-revocations")),
                "{written:?}"
            );
        }
        // Both accounts hold the same state: the other account denies the
        // session, and tvm's own still denies the earlier one (nothing un-revoked).
        let ctx = |id: &str| Context {
            source_identity: Some(format!("tvm-{id}")),
            action: "s3:GetObject".into(),
            ..Default::default()
        };
        for account in [OTHER_ACCOUNT, ACCOUNT] {
            let doc = revocation_policy_in(account).await;
            for id in [sid(&other), sid(&local)] {
                assert_eq!(
                    denied_by(&doc, &ctx(&id)).as_deref(),
                    Some("RevokedSessions"),
                    "{account}: {doc}"
                );
            }
            assert_eq!(denied_by(&doc, &ctx("0123")), None, "others are not denied");
        }
        // The same-named role in tvm's account keeps its own policies.
        let iam = aws_sdk_iam::Client::new(&sdk());
        let inline = iam
            .list_role_policies()
            .role_name("orders-tenant")
            .send()
            .await
            .unwrap();
        let mut names = inline.policy_names().to_vec();
        names.sort();
        assert_eq!(names, ["chain", "inline"]);
        lambda.stop().await;
    });
}

#[test]
fn revoking_a_caller_with_500_live_sessions_is_one_statement_within_every_aws_limit() {
    run(async {
        let (lambda, proxy) = rev_lambda(&[]).await;
        let first = vend_rev(&lambda, &caller("rev-many", "s0"), "rev").await;
        let vend = assume_of(&proxy.calls(), &sid(&first));
        // 499 more live sessions of the same caller, as the function records them.
        let item = session_item(&sid(&first)).await;
        let ddb = aws_sdk_dynamodb::Client::new(&sdk());
        let ids: Vec<String> = (0..499)
            .map(|i| format!("{:032x}", 0x5e55_0000_u64 + i))
            .collect();
        for chunk in ids.chunks(25) {
            let writes = chunk
                .iter()
                .map(|id| {
                    let mut it = item.clone();
                    it.insert("session_id".into(), AttributeValue::S(id.clone()));
                    it.insert(
                        "source_identity".into(),
                        AttributeValue::S(format!("tvm-{id}")),
                    );
                    WriteRequest::builder()
                        .put_request(PutRequest::builder().set_item(Some(it)).build().unwrap())
                        .build()
                })
                .collect();
            ddb.batch_write_item()
                .request_items("tvm-sessions", writes)
                .send()
                .await
                .unwrap();
        }
        let mark = proxy.mark();
        let a = revoke_caller(
            &lambda,
            "arn:aws:iam::123456789012:role/rev-many",
            json!({}),
        )
        .await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        assert_eq!(a.body["sessions_revoked"].as_array().unwrap().len(), 500);
        let calls = proxy.calls_since(mark);
        assert_eq!(beyond_aws_limits(&calls), Vec::<String>::new());
        // At most a policy write per account, whatever the number of
        // sessions (none where a concurrent revocation already wrote a
        // state that holds this one: the write lease records it).
        let written = |account: &str| {
            calls
                .iter()
                .filter(|c| c.action == "CreatePolicyVersion")
                .filter(|c| c.param("PolicyArn").is_some_and(|a| a.contains(account)))
                .count()
        };
        for account in [ACCOUNT, OTHER_ACCOUNT] {
            assert!(written(account) <= 1, "{account}: {}", written(account));
        }
        // One statement on the caller tag; none of the sessions listed.
        let doc = revocation_policy_in(ACCOUNT).await;
        let text = doc.to_string();
        assert_eq!(
            text.matches("arn:aws:iam::123456789012:role/rev-many")
                .count(),
            1,
            "{text}"
        );
        assert!(!ids.iter().any(|id| text.contains(id.as_str())));
        let ctx = vended_context(&vend, now() - 10);
        assert_eq!(
            denied_by(&doc, &ctx)
                .as_deref()
                .map(|s| s.starts_with("RevokedCaller")),
            Some(true),
            "{doc}"
        );
        for id in [&ids[0], &ids[498], &sid(&first)] {
            assert_eq!(s(&session_item(id).await, "status"), "revoked");
        }
        let again = call(
            &lambda,
            vend_event(&caller("rev-many", "s9"), json!({"profile": "rev"})),
        )
        .await;
        assert_eq!(again.code(), "SessionRevoked");
        lambda.stop().await;
    });
}

#[test]
fn a_chained_session_carries_what_the_deny_matches_and_cannot_chain_out_of_reach() {
    run(async {
        let (lambda, proxy) = rev_lambda(&[]).await;
        let vended = vend_rev(&lambda, &caller("rev-chain", "s1"), "rev").await;
        let issued = now();
        let vend = assume_of(&proxy.calls(), &sid(&vended));
        let keys: Vec<String> = (1..=3)
            .filter_map(|i| vend.param(&format!("TransitiveTagKeys.member.{i}")))
            .collect();
        assert_eq!(keys, ["tvm-caller", "tvm-session", "tvm-via"]);
        // Chain with the vended credentials into the chain target (through a
        // proxy of the test's own, so that the call is recorded).
        let creds = aws_credential_types::Credentials::new(
            vended.body["AccessKeyId"].as_str().unwrap(),
            vended.body["SecretAccessKey"].as_str().unwrap(),
            vended.body["SessionToken"].as_str().map(str::to_string),
            None,
            "vended",
        );
        let ids = &shared().stack.ids;
        let chain_proxy = Proxy::start(shared().stack.moto.addr).await.unwrap();
        let chained =
            aws_sdk_sts::Client::new(&tvm_devstack::stack::sdk_config(&chain_proxy.url(), creds))
                .assume_role()
                .role_arn(&ids.chain_target)
                .role_session_name("chained")
                .send()
                .await
                .expect("the vended session chains into the chain target");
        assert!(chained.credentials().is_some());
        let chain_call = assume_role_calls(&chain_proxy.calls()).pop().unwrap();
        assert!(
            chain_call.param("SourceIdentity").is_none(),
            "the chain sets none: STS carries the vend's"
        );
        // What AWS gives the chained session: the vend's SourceIdentity and
        // its transitive tags (which a chain cannot override).
        let parent = vended_context(&vend, issued);
        let transitive: HashMap<String, String> = parent
            .principal_tags
            .iter()
            .filter(|(k, _)| keys.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let chain_ctx = Context {
            principal_tags: transitive,
            token_issue_time: now(),
            ..parent.clone()
        };
        // The chain guard: a tvm session may assume the chain target (tagged
        // as carrying the policy; infra/tests check the modules attach it),
        // not a role without the tag. (The local stack leaves the policy
        // unattached: moto would apply its conditional denies to everything.)
        let iam = aws_sdk_iam::Client::new(&sdk());
        let role_tags = |name: &'static str| {
            let iam = iam.clone();
            async move {
                iam.list_role_tags()
                    .role_name(name)
                    .send()
                    .await
                    .unwrap()
                    .tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect::<HashMap<_, _>>()
            }
        };
        let doc = revocation_policy_in(ACCOUNT).await;
        let assume = |tags, account: &str| Context {
            action: "sts:AssumeRole".into(),
            resource_tags: tags,
            resource_account: Some(account.to_string()),
            ..parent.clone()
        };
        let chain_tags = role_tags("chain-target").await;
        assert_eq!(denied_by(&doc, &assume(chain_tags.clone(), ACCOUNT)), None);
        assert_eq!(
            denied_by(&doc, &assume(role_tags("orders-task").await, ACCOUNT)).as_deref(),
            Some("ChainOnlyIntoRevocableRoles"),
            "a role without the policy is out of reach"
        );

        let other = vend_rev(&lambda, &caller("rev-chain", "s2"), "rev").await;
        let other_ctx = vended_context(&assume_of(&proxy.calls(), &sid(&other)), now());
        // Revoke the session: the chain's SourceIdentity matches.
        assert_eq!(revoke_session(&lambda, &sid(&vended)).await.status, 200);
        let doc = revocation_policy_in(ACCOUNT).await;
        assert_eq!(
            denied_by(&doc, &chain_ctx).as_deref(),
            Some("RevokedSessions")
        );
        // Once tvm wrote the policy, chains (of a session nothing revoked)
        // stay within the accounts it writes.
        let unrevoked = |account: &str| Context {
            source_identity: Some("tvm-not-revoked".into()),
            principal_tags: HashMap::new(),
            ..assume(chain_tags.clone(), account)
        };
        assert_eq!(denied_by(&doc, &unrevoked(ACCOUNT)), None);
        assert_eq!(
            denied_by(&doc, &unrevoked("999999999999")).as_deref(),
            Some("ChainOnlyWithinRevokedAccounts"),
            "so is a tagged role in an account whose policy tvm does not write"
        );
        // Revoke the caller: a chain of any of its sessions matches the tag,
        // and a session issued after the cut-off does not.
        let a = revoke_caller(
            &lambda,
            "arn:aws:iam::123456789012:role/rev-chain",
            json!({"duration_seconds": 60}),
        )
        .await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        let doc = revocation_policy_in(ACCOUNT).await;
        let by_caller = |ctx: &Context| {
            let no_si = Context {
                source_identity: None,
                ..ctx.clone()
            };
            denied_by(&doc, &no_si)
        };
        assert!(by_caller(&chain_ctx).is_some_and(|s| s.starts_with("RevokedCaller")));
        assert!(by_caller(&other_ctx).is_some_and(|s| s.starts_with("RevokedCaller")));
        let later = Context {
            token_issue_time: now() + 61,
            ..other_ctx.clone()
        };
        assert_eq!(
            by_caller(&later),
            None,
            "vends after the revocation ends are not denied"
        );
        lambda.stop().await;
    });
}

/// The pair gate of a caller for the `rev` profile.
fn pair_gate(role: &str) -> String {
    format!("#revoked#pair#arn:aws:iam::123456789012:role/{role}#rev")
}

#[test]
fn a_failure_at_each_step_says_what_holds_and_the_same_request_completes_it() {
    run(async {
        // (where, the fault's service and body match, how far it got)
        let steps: [(&str, &str, &str, &str); 6] = [
            (
                "the revoker's STS session",
                "sts",
                "tvm-revoker",
                "did not take effect:",
            ),
            (
                "the revocation state",
                "dynamodb",
                "\"#revocations\"",
                "did not take effect:",
            ),
            (
                "the write lease",
                "dynamodb",
                "#revocations-lease#",
                "it is stored, but",
            ),
            (
                "the IAM policy write",
                "iam",
                "CreatePolicyVersion",
                "it is stored, but",
            ),
            (
                "the gate",
                "dynamodb",
                "#revoked#pair#",
                "credentials already issued are denied",
            ),
            (
                "the session's mark",
                "dynamodb",
                ":status",
                "credentials already issued are denied",
            ),
        ];
        // A state of its own (sessions table, revocation policy, profiles):
        // no other test's writer can make a faulted call unnecessary.
        let env = isolated("faults", &[("rev", REV)]).await;
        let table = "tvm-sessions-faults";
        let iam = aws_sdk_iam::Client::new(&sdk());
        let policy = format!("arn:aws:iam::{ACCOUNT}:policy/tvm/tvm-revocations-faults");
        for (i, (step, service, needle, said)) in steps.into_iter().enumerate() {
            let denied = said.contains("denied");
            // A fresh instance: no revoker session cached from another step.
            let (lambda, proxy) = lambda_in(&env).await;
            let role = format!("rev-fault{i}");
            let v = vend_rev(&lambda, &caller(&role, "s1"), "rev").await;
            let id = sid(&v);
            let mark = proxy.mark();
            proxy.set_fault_when(service, needle, Some(Fault::Status(500)));
            let a = revoke_session(&lambda, &id).await;
            proxy.set_fault_when(service, needle, None);
            // The faulted call was made (nothing else writes this state).
            let reached = proxy
                .calls_since(mark)
                .iter()
                .any(|c| c.service == service && c.body.contains(needle) && c.status == 500);
            assert!(reached, "{step}: the fault was reached");
            assert_eq!(
                (a.status, a.code()),
                (503, "DependencyFailed"),
                "{step}: {:?}",
                a.body
            );
            let message = a.body["message"].as_str().unwrap();
            assert!(
                message.contains("retry the same request"),
                "{step}: {message}"
            );
            let doc = default_version(&iam, &policy).await;
            let ctx = Context {
                source_identity: Some(format!("tvm-{id}")),
                action: "s3:GetObject".into(),
                ..Default::default()
            };
            assert!(message.contains(said), "{step}: {message}");
            if denied {
                assert_eq!(
                    denied_by(&doc, &ctx).as_deref(),
                    Some("RevokedSessions"),
                    "{step}"
                );
            } else {
                assert!(
                    message.contains("nothing was marked revoked"),
                    "{step}: {message}"
                );
                assert!(
                    gate_item_in(table, &pair_gate(&role)).await.is_none(),
                    "{step}"
                );
                if said.starts_with("did not") {
                    // Not stored: no write carries it.
                    assert_eq!(denied_by(&doc, &ctx), None, "{step}: {doc}");
                }
            }
            assert_eq!(
                s(&session_item_in(table, &id).await, "status"),
                "issued",
                "{step}"
            );
            // The same request again completes it.
            let again = revoke_session(&lambda, &id).await;
            assert_eq!(again.status, 200, "{step}: {:?}", again.body);
            let doc = default_version(&iam, &policy).await;
            assert_eq!(
                denied_by(&doc, &ctx).as_deref(),
                Some("RevokedSessions"),
                "{step}"
            );
            assert!(
                gate_item_in(table, &pair_gate(&role)).await.is_some(),
                "{step}"
            );
            assert_eq!(
                s(&session_item_in(table, &id).await, "status"),
                "revoked",
                "{step}"
            );
            let blocked = call(
                &lambda,
                vend_event(&caller(&role, "s2"), json!({"profile": "rev"})),
            )
            .await;
            assert_eq!(blocked.code(), "SessionRevoked", "{step}");
            lambda.stop().await;
        }
    });
}

#[test]
fn an_account_without_a_revoker_is_refused_before_anything_is_marked() {
    run(async {
        // A prefix of its own: no other test's revocations reach the account.
        let doc = REV.replace(
            "123456789012:role/tvm/orders-tenant",
            "333333333333:role/tvm/orders-tenant",
        );
        aws_sdk_ssm::Client::new(&sdk())
            .put_parameter()
            .name("/tvm/rev-nowhere/rev")
            .value(doc)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .unwrap();
        let (lambda, proxy) = counted_lambda(&[("TVM_POLICY_PREFIX", "/tvm/rev-nowhere/")]).await;
        // What AWS answers when no role tvm may assume is there (moto hands
        // out credentials for roles that do not exist).
        proxy.set_fault_when("sts", "333333333333", Some(Fault::Refuse("AccessDenied")));
        let target = "arn:aws:iam::123456789012:role/rev-nowhere";
        let a = revoke_caller(&lambda, target, json!({})).await;
        assert_eq!(
            (a.status, a.code()),
            (503, "DependencyFailed"),
            "{:?}",
            a.body
        );
        let message = a.body["message"].as_str().unwrap();
        assert!(
            message.contains("account 333333333333 has no revoker role arn:aws:iam::333333333333:role/tvm/tvm-revoker that tvm may assume"),
            "{message}"
        );
        assert!(message.contains("nothing was marked revoked"), "{message}");
        assert!(gate_item(&format!("#revoked#caller#{target}"))
            .await
            .is_none());
        let state = gate_item("#revocations").await.unwrap_or_default();
        assert!(
            !state.keys().any(|k| k.contains("rev-nowhere")),
            "nothing stored either"
        );
        lambda.stop().await;
    });
}

#[test]
fn a_full_policy_refuses_a_session_loudly_and_still_takes_its_caller() {
    run(async {
        // A table and a policy of its own: filling them blocks no other test.
        let table = "tvm-sessions-full";
        let policy = "arn:aws:iam::123456789012:policy/tvm/tvm-revocations-full";
        crate::revocation_kit::sessions_table(table);
        let iam = aws_sdk_iam::Client::new(&sdk());
        let _ = iam
            .create_policy()
            .policy_name("tvm-revocations-full")
            .path("/tvm/")
            .policy_document(revocation_policy_in(ACCOUNT).await.to_string())
            .send()
            .await;
        // Fill what approvers may use (62 sessions: see tvm-core's
        // revocation tests), as the function stores it.
        let soon = now() + 3000;
        let mut item = HashMap::from([
            (
                "session_id".to_string(),
                AttributeValue::S("#revocations".into()),
            ),
            ("version".to_string(), AttributeValue::N("1".into())),
        ]);
        for i in 0..62 {
            item.insert(
                format!("s:tvm-{:032x}", 0xf011_0000_u64 + i),
                AttributeValue::M(HashMap::from([(
                    "p".to_string(),
                    AttributeValue::N(soon.to_string()),
                )])),
            );
        }
        let ddb = aws_sdk_dynamodb::Client::new(&sdk());
        ddb.put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
        aws_sdk_ssm::Client::new(&sdk())
            .put_parameter()
            .name("/tvm/rev-full/rev")
            .value(REV_APPROVED)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .unwrap();
        // Its own prefix too: the policy is written to this account only.
        let (lambda, proxy) = counted_lambda(&[
            ("TVM_SESSIONS_TABLE", table),
            ("TVM_REVOCATION_POLICY", "/tvm/tvm-revocations-full"),
            ("TVM_POLICY_PREFIX", "/tvm/rev-full/"),
        ])
        .await;
        let v = vend_rev(&lambda, &caller("rev-full", "s1"), "rev").await;
        let path = format!("/v1/sessions/{}/revoke", sid(&v));
        let a = post(&lambda, REV_APPROVER, &path, json!({"reason": "leaked"})).await;
        assert_eq!((a.status, a.code()), (409, "Conflict"), "{:?}", a.body);
        let message = a.body["message"].as_str().unwrap();
        assert!(message.contains("63 sessions"), "{message}");
        assert!(message.contains("revoke the caller instead"), "{message}");
        assert!(message.contains("nothing was revoked"), "{message}");
        let record = ddb
            .get_item()
            .table_name(table)
            .key("session_id", AttributeValue::S(sid(&v)))
            .send()
            .await
            .unwrap()
            .item
            .unwrap();
        assert_eq!(s(&record, "status"), "issued");
        // Loudly, and nothing dropped; the security team still revokes, in
        // the room kept for it: the session, and its caller.
        let a = revoke_session(&lambda, &sid(&v)).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        let a = revoke_caller(
            &lambda,
            "arn:aws:iam::123456789012:role/rev-full",
            json!({}),
        )
        .await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        assert_eq!(beyond_aws_limits(&proxy.calls()), Vec::<String>::new());
        let doc = default_version(&iam, policy).await;
        assert!(doc.to_string().len() <= 6144);
        let sessions = doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == "RevokedSessions")
            .unwrap()["Condition"]["StringEquals"]["aws:SourceIdentity"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(sessions, 63, "the 62 kept, and the security team's");
        let ctx = vended_context(&assume_of(&proxy.calls(), &sid(&v)), now() - 5);
        assert_eq!(denied_by(&doc, &ctx).as_deref(), Some("RevokedSessions"));
        let by_tag = Context {
            source_identity: None,
            ..ctx
        };
        assert!(denied_by(&doc, &by_tag).is_some_and(|s| s.starts_with("RevokedCaller")));
        lambda.stop().await;
    });
}

/// A rule that opts into vended sessions: their vends belong to the caller
/// the first session was vended for.
const REV_ONWARD: &str = r#"
profile: rev-onward
role_arn: arn:aws:iam::123456789012:role/tvm/reports-readonly
rules:
  - {name: from-orders, effect: allow, allow_vended_sessions: true,
     principals: ["arn:aws:sts::123456789012:assumed-role/orders-tenant/*"]}
"#;

/// A vended session vends again where a rule opted in: the vend it came
/// from, as recorded (`first`), and the onward vend's recorded AssumeRole.
async fn chain(lambda: &Lambda, proxy: &Proxy, role: &str) -> (Answer, Call, String) {
    let first = vend_rev(lambda, &caller(role, "s1"), "rev").await;
    let name = assume_of(&proxy.calls(), &sid(&first))
        .param("RoleSessionName")
        .unwrap();
    assert!(
        name.ends_with(&sid(&first)),
        "{name}: the session name carries its vend"
    );
    let vended = caller("orders-tenant", &name);
    let onward = vend_rev(lambda, &vended, "rev-onward").await;
    let second = assume_of_session(&proxy.calls(), &sid(&onward));
    (first, second, vended)
}

/// The recorded AssumeRole of a vend, by its `tvm-session` tag (an onward
/// vend carries the first vend's SourceIdentity).
fn assume_of_session(calls: &[Call], session_id: &str) -> Call {
    assume_role_calls(calls)
        .into_iter()
        .find(|c| {
            (1..=50).any(|i| {
                c.param(&format!("Tags.member.{i}.Key")).as_deref() == Some("tvm-session")
                    && c.param(&format!("Tags.member.{i}.Value")).as_deref() == Some(session_id)
            })
        })
        .expect("the vend's AssumeRole was recorded")
}

#[test]
fn a_vend_by_a_vended_session_is_revoked_with_the_chain_it_came_from() {
    run(async {
        use aws_sdk_ssm::types::ParameterType::String as Plain;
        put_policy("rev-onward", REV_ONWARD, Plain).await;
        let (lambda, proxy) = rev_lambda(&[]).await;
        let (first, second, vended) = chain(&lambda, &proxy, "rev-origin").await;
        // The onward vend inherits the first vend's SourceIdentity (as a role
        // chain does), caller and grant.
        assert_eq!(
            second.param("SourceIdentity").unwrap(),
            format!("tvm-{}", sid(&first))
        );
        assert_eq!(
            second.param("Tags.member.1.Value").as_deref(),
            Some("arn:aws:iam::123456789012:role/rev-origin"),
            "tvm-caller is the caller the first session was vended for"
        );
        // A session name that names no vend of that role vends nothing.
        for forged in [
            caller("orders-tenant", "x.0123456789abcdef0123456789abcdef"),
            caller("orders-tenant", "no-id"),
        ] {
            let a = call(
                &lambda,
                vend_event(&forged, json!({"profile": "rev-onward"})),
            )
            .await;
            assert_eq!((a.status, a.code()), (403, "AccessDenied"), "{forged}");
        }

        // Revoking the first session: the onward credentials share its
        // SourceIdentity, and the vended session vends no more.
        assert_eq!(revoke_session(&lambda, &sid(&first)).await.status, 200);
        let doc = revocation_policy_in(ACCOUNT).await;
        let ctx = vended_context(&second, now() - 5);
        assert_eq!(
            denied_by(&doc, &ctx).as_deref(),
            Some("RevokedSessions"),
            "{doc}"
        );
        let again = call(
            &lambda,
            vend_event(&vended, json!({"profile": "rev-onward"})),
        )
        .await;
        assert_eq!(again.status, 403, "{:?}", again.body);

        // Revoking the first caller: the onward credentials carry its tag.
        let (_, second, vended) = chain(&lambda, &proxy, "rev-origin2").await;
        let a = revoke_caller(
            &lambda,
            "arn:aws:iam::123456789012:role/rev-origin2",
            json!({}),
        )
        .await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        let doc = revocation_policy_in(ACCOUNT).await;
        let ctx = Context {
            source_identity: None,
            ..vended_context(&second, now() - 5)
        };
        assert!(
            denied_by(&doc, &ctx).is_some_and(|s| s.starts_with("RevokedCaller")),
            "{doc}"
        );
        let again = call(
            &lambda,
            vend_event(&vended, json!({"profile": "rev-onward"})),
        )
        .await;
        assert_eq!(again.status, 403, "{:?}", again.body);
        lambda.stop().await;
    });
}

#[test]
fn a_session_is_read_by_its_caller_and_managers_only_and_revocations_by_the_security_team() {
    run(async {
        let (lambda, proxy) = rev_lambda(&[]).await;
        let owner = caller("rev-reader", "alice");
        let id = sid(&vend_rev(&lambda, &owner, "rev").await);
        let one = format!("/v1/sessions/{id}");
        assert_eq!(get(&lambda, &owner, &one).await.status, 200);
        // Another person in the same role, another role, a session tvm
        // vended: like a session that does not exist.
        for other in [
            caller("rev-reader", "mallory"),
            caller("rev-other", "alice"),
            caller("orders-tenant", &format!("alice.{id}")),
        ] {
            let a = get(&lambda, &other, &one).await;
            assert!(matches!(a.status, 403 | 404), "{other}: {:?}", a.body);
            assert!(a.body.get("session_id").is_none(), "{other}: {:?}", a.body);
        }
        // Every revocation, to the security team only.
        let since = format!("/v1/sessions?revoked_since={}", now() - 600);
        assert_eq!(get(&lambda, &owner, &since).await.status, 403);
        assert_eq!(get(&lambda, ADMIN, &since).await.status, 200);
        let old = format!("/v1/sessions?revoked_since={}", now() - 91 * 86_400);
        assert_eq!(get(&lambda, ADMIN, &old).await.status, 400);

        // A vend STS refused stays failed: it cannot be revoked.
        proxy.set_fault_when("sts", "failing", Some(Fault::Refuse("AccessDenied")));
        let failing = caller("rev-reader", "failing");
        let refused = call(&lambda, vend_event(&failing, json!({"profile": "rev"}))).await;
        proxy.set_fault_when("sts", "failing", None);
        assert_ne!(refused.status, 200, "{:?}", refused.body);
        let listed = get(
            &lambda,
            ADMIN,
            "/v1/sessions?caller=arn:aws:iam::123456789012:role/rev-reader",
        )
        .await;
        let failed = listed.body["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["caller_arn"] == failing.as_str())
            .unwrap_or_else(|| panic!("{:?}", listed.body))["session_id"]
            .as_str()
            .unwrap()
            .to_string();
        let a = post(
            &lambda,
            ADMIN,
            &format!("/v1/sessions/{failed}/revoke"),
            json!({"reason": "tidy up"}),
        )
        .await;
        assert_eq!((a.status, a.code()), (409, "Conflict"), "{:?}", a.body);
        let seen = get(&lambda, ADMIN, &format!("/v1/sessions/{failed}")).await;
        assert_eq!(seen.body["status"], "failed");
        lambda.stop().await;
    });
}
