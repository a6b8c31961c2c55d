//! Any X-Tvm-Identity value and any STS answer: refused or accepted, never a
//! panic; accepted envelopes carry only the allowed, signed headers.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tvm_lambda::identity::presigned::{check_presigned, parse_caller_identity, PresignRules};

fuzz_target!(|data: &[u8]| {
    let _ = parse_caller_identity(data);
    let Ok(header) = std::str::from_utf8(data) else { return };
    let rules = PresignRules { server_id: "tvm-fuzz-1", sts_authority: "sts.us-east-1.amazonaws.com" };
    if let Ok(checked) = check_presigned(header, &rules, chrono::Utc::now()) {
        assert!(checked.headers.iter().any(|(n, _)| n == "authorization"));
    }
});
