//! What changes between two documents of one profile, as a reader of the
//! policy sees it: settings changed, rules added, removed or changed (rules
//! by name, each rule's fields by key), regardless of formatting, comments,
//! key order or a signature line. `tvm policy diff` and `push` print it.

use std::collections::BTreeSet;
use std::fmt;

use serde_yaml::{Mapping, Value};

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A top-level setting (`role_arn`, `duration`, `session_policy`, ...).
    Setting {
        key: String,
        old: Option<String>,
        new: Option<String>,
    },
    RuleAdded(String),
    RuleRemoved(String),
    /// A rule's field, by key.
    RuleChanged {
        rule: String,
        key: String,
        old: Option<String>,
        new: Option<String>,
    },
    /// The rules are the same but in another order (the first matching deny
    /// or allow decides: order can matter).
    RulesReordered,
}

fn show(v: Option<&String>) -> &str {
    v.map_or("(none)", String::as_str)
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Setting { key, old, new } => write!(
                f,
                "~ {key}: {} -> {}",
                show(old.as_ref()),
                show(new.as_ref())
            ),
            Self::RuleAdded(r) => write!(f, "+ rule {r}"),
            Self::RuleRemoved(r) => write!(f, "- rule {r}"),
            Self::RuleChanged {
                rule,
                key,
                old,
                new,
            } => write!(
                f,
                "~ rule {rule}: {key}: {} -> {}",
                show(old.as_ref()),
                show(new.as_ref())
            ),
            Self::RulesReordered => write!(f, "~ rules: same rules, another order"),
        }
    }
}

/// A value on one line (flow YAML, as JSON reads).
fn one_line(v: &Value) -> String {
    match v {
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        other => serde_json::to_string(other).unwrap_or_else(|_| format!("{other:?}")),
    }
}

fn mapping(text: &str) -> Result<Mapping, String> {
    match serde_yaml::from_str::<Value>(text).map_err(|e| e.to_string())? {
        Value::Mapping(m) => Ok(m),
        _ => Err("the document is not a mapping".into()),
    }
}

fn key_name(k: &Value) -> String {
    k.as_str().map_or_else(|| one_line(k), str::to_string)
}

/// Changes between the mappings, key by key (keys in sorted order).
fn fields(old: &Mapping, new: &Mapping) -> Vec<(String, Option<String>, Option<String>)> {
    let keys: BTreeSet<String> = old.keys().chain(new.keys()).map(key_name).collect();
    keys.into_iter()
        .filter_map(|k| {
            let key = Value::String(k.clone());
            let (o, n) = (old.get(&key), new.get(&key));
            (o != n).then(|| (k, o.map(one_line), n.map(one_line)))
        })
        .collect()
}

fn rules(m: &Mapping) -> Vec<(String, Mapping)> {
    let Some(Value::Sequence(list)) = m.get("rules") else {
        return Vec::new();
    };
    list.iter()
        .enumerate()
        .map(|(i, r)| {
            let body = r.as_mapping().cloned().unwrap_or_default();
            let name = body
                .get("name")
                .and_then(Value::as_str)
                .map_or_else(|| format!("#{}", i + 1), str::to_string);
            (name, body)
        })
        .collect()
}

/// The changes from `old` to `new` (both documents of the same profile;
/// valid ones, as `tvm` checks before it diffs).
pub fn diff(old: &str, new: &str) -> Result<Vec<Change>, String> {
    let (old, new) = (mapping(old)?, mapping(new)?);
    let mut out: Vec<Change> = {
        let (mut o, mut n) = (old.clone(), new.clone());
        o.remove("rules");
        n.remove("rules");
        fields(&o, &n)
            .into_iter()
            .map(|(key, old, new)| Change::Setting { key, old, new })
            .collect()
    };
    let (before, after) = (rules(&old), rules(&new));
    for (name, body) in &after {
        match before.iter().find(|(n, _)| n == name) {
            None => out.push(Change::RuleAdded(name.clone())),
            Some((_, was)) => out.extend(fields(was, body).into_iter().map(|(key, old, new)| {
                Change::RuleChanged {
                    rule: name.clone(),
                    key,
                    old,
                    new,
                }
            })),
        }
    }
    for (name, _) in &before {
        if !after.iter().any(|(n, _)| n == name) {
            out.push(Change::RuleRemoved(name.clone()));
        }
    }
    let order = |rs: &[(String, Mapping)], other: &[(String, Mapping)]| -> Vec<String> {
        rs.iter()
            .filter(|(n, _)| other.iter().any(|(m, _)| m == n))
            .map(|(n, _)| n.clone())
            .collect()
    };
    if order(&before, &after) != order(&after, &before) {
        out.push(Change::RulesReordered);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = r#"
profile: orders
role_arn: arn:aws:iam::111122223333:role/tvm/orders
rules:
  - {name: ecs, effect: allow, principals: ["arn:aws:sts::111122223333:assumed-role/orders-task/*"]}
  - {name: ops, effect: allow, principals: ["arn:aws:sts::111122223333:assumed-role/ops/*"]}
"#;

    #[test]
    fn formatting_comments_key_order_and_a_signature_are_no_change() {
        let same = "# the orders profile\nrole_arn: arn:aws:iam::111122223333:role/tvm/orders\nprofile: orders\nrules:\n  - name: ecs\n    principals: [\"arn:aws:sts::111122223333:assumed-role/orders-task/*\"]\n    effect: allow\n  - {effect: allow, name: ops, principals: [\"arn:aws:sts::111122223333:assumed-role/ops/*\"]}\n# tvm-signature: v1 ECDSA_SHA_256 c2ln\n";
        assert_eq!(diff(OLD, same).unwrap(), vec![]);
    }

    #[test]
    fn settings_and_rules_are_compared_by_key_and_by_name() {
        let new = r#"
profile: orders
role_arn: arn:aws:iam::111122223333:role/tvm/orders-v2
duration: {default: 900}
rules:
  - {name: ops, effect: allow, principals: ["arn:aws:sts::111122223333:assumed-role/ops/*"], require_approval: {approvers: ["arn:aws:sts::111122223333:assumed-role/lead/*"]}}
  - {name: ci, effect: allow, principals: ["arn:aws:sts::111122223333:assumed-role/ci/*"]}
"#;
        let changes = diff(OLD, new).unwrap();
        let shown: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "~ duration: (none) -> {\"default\":900}",
                "~ role_arn: \"arn:aws:iam::111122223333:role/tvm/orders\" -> \"arn:aws:iam::111122223333:role/tvm/orders-v2\"",
                "~ rule ops: require_approval: (none) -> {\"approvers\":[\"arn:aws:sts::111122223333:assumed-role/lead/*\"]}",
                "+ rule ci",
                "- rule ecs",
            ]
        );
    }

    #[test]
    fn the_same_rules_in_another_order_are_a_change() {
        let swapped = r#"
profile: orders
role_arn: arn:aws:iam::111122223333:role/tvm/orders
rules:
  - {name: ops, effect: allow, principals: ["arn:aws:sts::111122223333:assumed-role/ops/*"]}
  - {name: ecs, effect: allow, principals: ["arn:aws:sts::111122223333:assumed-role/orders-task/*"]}
"#;
        assert_eq!(diff(OLD, swapped).unwrap(), vec![Change::RulesReordered]);
        assert!(diff(OLD, "- a list").is_err());
    }
}
