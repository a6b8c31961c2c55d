//! Any Lambda payload: an HTTP request or a refusal, never a panic that
//! escapes; an identity only from a well-formed IAM context.
#![no_main]
use lambda_http::RequestExt;
use libfuzzer_sys::fuzz_target;
use tvm_lambda::event::parse_event;
use tvm_lambda::identity::apigw::from_context;

fuzz_target!(
    init: {
        // libfuzzer-sys aborts on every panic, even a caught one. lambda_http's
        // conversion panics on some hosts, paths and schemes, and parse_event
        // catches that on purpose (it is a 400): only panics that escape count.
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| {
        let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else { return };
        if let Ok(request) = parse_event(event) {
            if let Ok(Some(caller)) = from_context(request.request_context_ref()) {
                assert!(caller.arn.starts_with("arn:aws"));
            }
        }
    }
);
