//! What moto does not check, checked here: whether an IAM policy document
//! or an SCP denies a request (moto evaluates no condition), and whether every request
//! a test recorded is within AWS's documented limits (moto accepts larger).
//!
//! The evaluator knows only what tvm's revocation policy uses, and panics on
//! anything else, so that a test never passes on an operator it ignored.

use std::collections::HashMap;

use serde_json::Value;
use tvm_devstack::proxy::Call;

/// The request context of one call made with some credentials.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub action: String,
    pub source_identity: Option<String>,
    /// `aws:PrincipalTag/*`: the session's tags, incoming transitive ones included.
    pub principal_tags: HashMap<String, String>,
    /// `aws:TokenIssueTime`, epoch seconds.
    pub token_issue_time: i64,
    /// `aws:ResourceTag/*` of the resource (the role, for sts:AssumeRole).
    pub resource_tags: HashMap<String, String>,
    /// `aws:ResourceAccount`.
    pub resource_account: Option<String>,
    /// `aws:userid` (`ROLEID:session-name` for an assumed role).
    pub userid: Option<String>,
    /// `aws:PrincipalArn` (a role's ARN for its sessions; none for SAML and
    /// web identity federation).
    pub principal_arn: Option<String>,
    /// `sts:SourceIdentity`: the one an AssumeRole* request asks for.
    pub requested_source_identity: Option<String>,
}

fn list(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().expect("string values"))
            .collect(),
        other => panic!("unexpected condition value {other}"),
    }
}

fn action_matches(pattern: &str, action: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => action
            .to_ascii_lowercase()
            .starts_with(&prefix.to_ascii_lowercase()),
        None => pattern.eq_ignore_ascii_case(action),
    }
}

fn iso(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("date {s}: {e}"))
        .timestamp()
}

fn key_value(ctx: &Context, key: &str) -> Option<String> {
    let tag = |tags: &HashMap<String, String>, k: &str| {
        tags.iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    if let Some(k) = key.strip_prefix("aws:PrincipalTag/") {
        return tag(&ctx.principal_tags, k);
    }
    if let Some(k) = key.strip_prefix("aws:ResourceTag/") {
        return tag(&ctx.resource_tags, k);
    }
    match key {
        "aws:SourceIdentity" => ctx.source_identity.clone(),
        "aws:TokenIssueTime" => Some(ctx.token_issue_time.to_string()),
        "aws:ResourceAccount" => ctx.resource_account.clone(),
        "aws:userid" => ctx.userid.clone(),
        "aws:PrincipalArn" => ctx.principal_arn.clone(),
        "sts:SourceIdentity" => ctx.requested_source_identity.clone(),
        other => panic!("the evaluator does not know condition key {other}"),
    }
}

/// `${aws:PrincipalTag/K}` and the like in a condition value, substituted.
fn subst(ctx: &Context, pattern: &str) -> String {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closed policy variable") + start;
        out.push_str(&key_value(ctx, &rest[start + 2..end]).unwrap_or_default());
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// IAM's `*` and `?` globs.
pub fn like(text: &str, pattern: &str) -> bool {
    fn go(t: &[u8], p: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(t, &p[1..]) || (!t.is_empty() && go(&t[1..], p)),
            (Some(b'?'), Some(_)) => go(&t[1..], &p[1..]),
            (Some(a), Some(b)) if a == b => go(&t[1..], &p[1..]),
            _ => false,
        }
    }
    go(text.as_bytes(), pattern.as_bytes())
}

fn condition_holds(condition: &Value, ctx: &Context) -> bool {
    let Some(ops) = condition.as_object() else {
        return true;
    };
    ops.iter().all(|(op, keys)| {
        keys.as_object().expect("keys").iter().all(|(key, want)| {
            let have = key_value(ctx, key);
            let want = list(want);
            match op.as_str() {
                "StringEquals" => have.is_some_and(|h| want.contains(&h.as_str())),
                "StringNotEquals" => have.is_none_or(|h| !want.contains(&h.as_str())),
                "StringLike" | "ArnLike" => {
                    have.is_some_and(|h| want.iter().any(|w| like(&h, &subst(ctx, w))))
                }
                "StringNotLike" | "ArnNotLike" => {
                    have.is_none_or(|h| !want.iter().any(|w| like(&h, &subst(ctx, w))))
                }
                "DateLessThan" => {
                    have.is_some_and(|h| want.iter().any(|w| h.parse::<i64>().unwrap() < iso(w)))
                }
                other => panic!("the evaluator does not know operator {other}"),
            }
        })
    })
}

/// The Sid of the first statement of `doc` that denies the request.
pub fn denied_by(doc: &Value, ctx: &Context) -> Option<String> {
    let statements = match &doc["Statement"] {
        Value::Array(a) => a.clone(),
        one => vec![one.clone()],
    };
    statements.iter().find_map(|s| {
        assert_eq!(
            s["Effect"], "Deny",
            "the revocation policy and the SCP only deny: {s}"
        );
        assert_eq!(s["Resource"], "*", "{s}");
        let acts = list(&s["Action"]);
        (acts.iter().any(|a| action_matches(a, &ctx.action))
            && condition_holds(&s["Condition"], ctx))
        .then(|| s["Sid"].as_str().unwrap_or("").to_string())
    })
}

/// DynamoDB's limit for one expression string.
const MAX_EXPRESSION: usize = 4096;
/// DynamoDB's item size limit (an item's JSON is a little larger than its size).
const MAX_ITEM: usize = 400 * 1024;
const EXPRESSIONS: &[&str] = &[
    "UpdateExpression",
    "ConditionExpression",
    "KeyConditionExpression",
    "FilterExpression",
    "ProjectionExpression",
];

fn check_dynamodb_request(action: &str, body: &Value, problems: &mut Vec<String>) {
    for e in EXPRESSIONS {
        if let Some(x) = body[e].as_str() {
            if x.len() > MAX_EXPRESSION {
                problems.push(format!("{action}: {e} is {} bytes", x.len()));
            }
        }
    }
    if let Some(item) = body.get("Item") {
        let size = item.to_string().len();
        if size > MAX_ITEM {
            problems.push(format!("{action}: an item of {size} bytes"));
        }
    }
}

/// Every way the recorded calls exceed AWS's documented limits.
pub fn beyond_aws_limits(calls: &[Call]) -> Vec<String> {
    let mut problems = Vec::new();
    for c in calls {
        match c.service.as_str() {
            "dynamodb" => {
                let body: Value = serde_json::from_str(&c.body).unwrap_or(Value::Null);
                check_dynamodb_request(&c.action, &body, &mut problems);
                if let Some(items) = body["TransactItems"].as_array() {
                    if items.len() > 100 {
                        problems.push(format!("TransactWriteItems of {} items", items.len()));
                    }
                    for item in items {
                        for kind in ["Put", "Update", "ConditionCheck", "Delete"] {
                            check_dynamodb_request(&c.action, &item[kind], &mut problems);
                        }
                    }
                }
                if let Some(tables) = body["RequestItems"].as_object() {
                    let n: usize = tables
                        .values()
                        .filter_map(|v| v.as_array())
                        .map(Vec::len)
                        .sum();
                    let max = if c.action == "BatchGetItem" { 100 } else { 25 };
                    if c.action == "BatchWriteItem" && n > max {
                        problems.push(format!("{}: {n} requests", c.action));
                    }
                }
            }
            "iam" => {
                if c.action == "PutRolePolicy" {
                    problems.push("PutRolePolicy: tvm writes no inline role policy".into());
                }
                if let Some(doc) = c.param("PolicyDocument") {
                    let chars = doc.chars().filter(|ch| !ch.is_whitespace()).count();
                    if chars > 6144 {
                        problems.push(format!(
                            "{}: a managed policy of {chars} characters",
                            c.action
                        ));
                    }
                }
            }
            "sts" if c.action == "AssumeRole" => {
                if let Some(p) = c.param("Policy") {
                    if p.chars().count() > 2048 {
                        problems.push(format!(
                            "AssumeRole: a session policy of {} characters",
                            p.len()
                        ));
                    }
                }
                let tags = (1..)
                    .take_while(|i| c.param(&format!("Tags.member.{i}.Key")).is_some())
                    .count();
                if tags > 50 {
                    problems.push(format!("AssumeRole: {tags} tags"));
                }
                for i in 1..=tags {
                    let v = c
                        .param(&format!("Tags.member.{i}.Value"))
                        .unwrap_or_default();
                    if v.chars().count() > 256 {
                        problems.push(format!("AssumeRole: a tag value of {} characters", v.len()));
                    }
                }
                for name in ["SourceIdentity", "RoleSessionName"] {
                    if let Some(v) = c.param(name) {
                        if !(2..=64).contains(&v.len()) {
                            problems.push(format!("AssumeRole: {name} of {} characters", v.len()));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    problems
}
