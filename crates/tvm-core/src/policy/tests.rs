//! Documents in, profiles or every problem out.

use super::*;
use chrono::{TimeZone, Utc};

pub const ORDERS: &str = r#"
profile: orders-tenant
role_arn: arn:aws:iam::111122223333:role/tvm/orders-tenant
duration: {default: 900, max: 3600}
session_policy: |
  {"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Action":["dynamodb:GetItem","dynamodb:PutItem","dynamodb:Query"],
    "Resource":"arn:aws:dynamodb:*:111122223333:table/orders",
    "Condition":{"ForAllValues:StringEquals":{"dynamodb:LeadingKeys":["${tenant}"]}}}]}
session_tags: {tenant: "${tenant}"}
rules:
  - {name: ecs-orders, effect: allow, principals: ["arn:aws:sts::111122223333:assumed-role/orders-task/*"],
     bind: {tenant: "${caller.session_name}"}}
  - {name: humans, effect: require_approval, principals: ["arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Dev*/*"],
     bind: {tenant: "${caller.session_name}"}}
  - {name: nights, effect: deny, time: {days: [sat, sun], timezone: Europe/Berlin}}
approval: {approvers: ["arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Sec*/*"], required: 1, ttl: 3600}
"#;

#[test]
fn parses_the_brief_example() {
    let p = parse_profile(ORDERS, Some("orders-tenant")).unwrap();
    assert_eq!(p.name, "orders-tenant");
    assert_eq!(p.role_arn.account(), "111122223333");
    assert_eq!(p.rules.len(), 3);
    assert_eq!(p.rules[2].effect, Effect::Deny);
    assert_eq!((p.default_duration, p.max_duration), (900, 3600));
}

#[test]
fn json_documents_parse_too() {
    let json = r#"{"profile":"p","role_arn":"arn:aws:iam::111122223333:role/r",
            "rules":[{"name":"a","effect":"allow","accounts":["111122223333"]}]}"#;
    assert!(parse_profile(json, None).is_ok());
}

fn errors(text: &str) -> Vec<String> {
    parse_profile(text, None)
        .unwrap_err()
        .errors
        .iter()
        .map(ToString::to_string)
        .collect()
}

const BASE: &str = "profile: p\nrole_arn: arn:aws:iam::111122223333:role/r\n";

#[test]
fn unknown_keys_and_unknown_effects_refuse_the_document() {
    let e = errors(&format!(
        "{BASE}rules: [{{name: a, effect: allow, accounts: ['111122223333']}}]\nextra: 1\n"
    ));
    assert!(e[0].contains("unknown field `extra`"), "{e:?}");
    let e = errors(&format!(
        "{BASE}rules: [{{name: a, effect: permit, accounts: ['111122223333']}}]\n"
    ));
    assert!(
        e.iter()
            .any(|m| m.starts_with("rules[0].effect: unknown effect \"permit\"")),
        "{e:?}"
    );
}

#[test]
fn every_problem_is_named_with_its_field() {
    let doc = r#"
profile: "bad name"
role_arn: arn:aws:iam::1:user/x
duration: {default: 3600, max: 900}
session_policy: '{"Version":"2012-10-17","Statement":[{"Resource":"${tenant"}]}'
rules:
  - {name: a, effect: allow, principals: ["bad glob"], time: {days: [funday], timezone: Mars/Base}}
  - {name: a, effect: allow, accounts: ['111122223333'], bind: {tenant: "${request.body}"}}
  - {name: c, effect: require_approval, accounts: ['111122223333']}
"#;
    let e = errors(doc).join("\n");
    for needle in [
        "profile: must be",
        "role_arn: must be an IAM role ARN",
        "duration.default: must not exceed duration.max",
        "session_policy:",
        "rules[0].principals[0]: \"bad glob\"",
        "rules[0].time.days[0]",
        "rules[0].time.timezone: \"Mars/Base\"",
        "rules[1].bind.tenant: uses ${request.body}",
        "rules[2].effect: require_approval needs an approval block",
    ] {
        assert!(e.contains(needle), "missing {needle:?} in\n{e}");
    }
}

#[test]
fn an_empty_rule_list_and_a_vending_rule_for_everyone_are_refused() {
    assert!(errors(&format!("{BASE}rules: []\n"))[0].contains("at least one rule"));
    let e = errors(&format!("{BASE}rules: [{{name: all, effect: allow}}]\n"));
    assert!(e[0].contains("must name who it applies to"), "{e:?}");
    // A deny may apply to everyone.
    assert!(parse_profile(&format!("{BASE}rules: [{{name: all, effect: deny}}, {{name: a, effect: allow, accounts: ['111122223333']}}]\n"), None).is_ok());
}

#[test]
fn a_template_variable_must_be_bound_by_every_rule_that_can_vend() {
    let doc = format!("{BASE}session_tags: {{tenant: '${{tenant}}'}}\nrules: [{{name: a, effect: allow, accounts: ['111122223333']}}]\n");
    assert!(errors(&doc)[0].contains("does not bind ${tenant}"));
}

#[test]
fn the_profile_must_match_its_parameter_name() {
    let doc = format!("{BASE}rules: [{{name: a, effect: allow, accounts: ['111122223333']}}]\n");
    let e = parse_profile(&doc, Some("other")).unwrap_err();
    assert!(e.to_string().contains("parameter is named \"other\""));
}

fn window(days: &str, hours: &str, tz: &str) -> TimeWindow {
    let doc = format!("{BASE}rules: [{{name: a, effect: deny, time: {{days: [{days}], hours: '{hours}', timezone: {tz}}}}}, {{name: b, effect: allow, accounts: ['111122223333']}}]\n");
    parse_profile(&doc, None).unwrap().rules[0]
        .time
        .clone()
        .unwrap()
}

#[test]
fn time_windows_respect_the_timezone_and_overnight_ranges() {
    // 2026-11-20 is a Friday.
    let w = window("fri", "22:00-06:00", "Europe/Berlin");
    let utc = |d, h, m| Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap();
    assert!(w.contains(utc(20, 21, 30))); // Fri 22:30 Berlin
    assert!(w.contains(utc(21, 4, 59))); // Sat 05:59 Berlin, still Friday's night
    assert!(!w.contains(utc(21, 5, 0))); // Sat 06:00 Berlin
    assert!(!w.contains(utc(20, 20, 59))); // Fri 21:59 Berlin
    assert!(!w.contains(utc(19, 22, 0))); // Thu 23:00 Berlin
    let day = window("mon", "09:00-17:00", "America/New_York");
    assert!(day.contains(utc(23, 14, 0))); // Mon 09:00 New York
    assert!(!day.contains(utc(23, 22, 0))); // Mon 17:00 New York
}

#[test]
fn time_windows_follow_daylight_saving_and_half_hour_zones() {
    // Berlin moves to CEST at 01:00 UTC on Sunday 2027-03-28.
    let sunday = window("sun", "02:30-03:30", "Europe/Berlin");
    let utc = |mo, d, h, m| Utc.with_ymd_and_hms(2027, mo, d, h, m, 0).unwrap();
    assert!(!sunday.contains(utc(3, 28, 0, 59))); // 01:59 CET
    assert!(sunday.contains(utc(3, 28, 1, 0))); // 03:00 CEST
    assert!(!sunday.contains(utc(3, 28, 1, 30))); // 03:30 CEST
    assert!(sunday.contains(utc(3, 21, 1, 30))); // a week before: 02:30 CET
    let kolkata = window("mon", "09:00-17:00", "Asia/Kolkata");
    assert!(!kolkata.contains(utc(3, 1, 3, 29))); // Mon 08:59 IST (+05:30)
    assert!(kolkata.contains(utc(3, 1, 3, 30))); // Mon 09:00 IST

    // Links from the database's backward file are names too.
    assert!(window("mon", "09:00-17:00", "US/Eastern").contains(utc(3, 1, 14, 0)));
}

#[test]
fn a_timezone_is_named_as_the_database_spells_it() {
    for tz in [
        "europe/berlin",
        "EUROPE/BERLIN",
        "utc",
        "Europe/Berlin ",
        "/etc/localtime",
        "../../etc/passwd",
        "Local",
        "Factory",
        "posixrules",
        "",
    ] {
        let doc = format!("{BASE}rules: [{{name: a, effect: deny, time: {{days: [mon], timezone: '{tz}'}}}}, {{name: b, effect: allow, accounts: ['111122223333']}}]\n");
        let e = errors(&doc);
        assert!(
            e.iter().any(|m| m.contains("is not an IANA timezone")),
            "{tz:?}: {e:?}"
        );
    }
}

#[test]
fn tvm_s_own_tags_are_not_a_profiles_to_set() {
    let rule = "rules: [{name: a, effect: allow, accounts: ['111122223333']}]\n";
    for key in ["tvm-caller", "TVM-Caller", "tvm-anything"] {
        let e = errors(&format!("{BASE}session_tags: {{'{key}': x}}\n{rule}"));
        assert!(
            e.iter().any(|m| m.contains("are tvm's own")),
            "{key}: {e:?}"
        );
    }
    let many: Vec<String> = (0..47).map(|i| format!("t{i}: x")).collect();
    let e = errors(&format!(
        "{BASE}session_tags: {{{}}}\n{rule}",
        many.join(", ")
    ));
    assert!(e.iter().any(|m| m.contains("more than 46 tags")), "{e:?}");
    let fits: Vec<String> = (0..46).map(|i| format!("t{i}: x")).collect();
    assert!(parse_profile(
        &format!("{BASE}session_tags: {{{}}}\n{rule}", fits.join(", ")),
        None
    )
    .is_ok());
}
