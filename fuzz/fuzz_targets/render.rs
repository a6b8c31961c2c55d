//! Any tenant value: refused, or rendered into valid JSON where it appears
//! only as itself, within the whitelist.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tvm_core::policy::parse_profile;
use tvm_core::render::render;
use tvm_core::template::{is_value_char, Vars};

const PROFILE: &str = include_str!("../../examples/policies/orders-tenant.yaml");

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else { return };
    let profile = parse_profile(PROFILE, None).expect("the example parses");
    let mut vars = Vars::new();
    if vars.insert("tenant", value).is_err() {
        return;
    }
    assert!(value.chars().all(is_value_char));
    let rendered = render(&profile, &vars).expect("a whitelisted value renders");
    let policy: serde_json::Value = serde_json::from_str(rendered.policy.as_deref().unwrap()).expect("JSON");
    let keys = &policy["Statement"][0]["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"];
    assert_eq!(keys[0].as_str(), Some(value));
});
