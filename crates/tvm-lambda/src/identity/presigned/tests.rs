//! The presigned identity checks, by example and fuzzed.

mod checks {
    use super::super::*;
    use std::time::{Duration, SystemTime};

    fn presigned(server_id: &str, at: SystemTime) -> String {
        let creds = aws_credential_types::Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            Some("SECRETTOKENVALUE".into()),
            None,
            "t",
        );
        tvm_client::presign::identity_header(
            &creds,
            "us-east-1",
            "https://sts.us-east-1.amazonaws.com",
            server_id,
            at,
        )
        .unwrap()
    }

    const RULES: PresignRules<'static> = PresignRules {
        server_id: "tvm-prod-1",
        sts_authority: "sts.us-east-1.amazonaws.com",
    };

    #[test]
    fn the_client_signature_passes_every_local_check() {
        let checked = check_presigned(
            &presigned("tvm-prod-1", SystemTime::now()),
            &RULES,
            Utc::now(),
        )
        .unwrap();
        let names: Vec<&str> = checked.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"x-amz-security-token") && names.contains(&"authorization"));
        assert!(
            !format!("{checked:?}").contains("SECRETTOKENVALUE"),
            "Debug shows header names only"
        );
    }

    #[test]
    fn a_foreign_server_id_a_foreign_host_and_an_old_date_are_refused() {
        let now = Utc::now();
        let other = check_presigned(&presigned("tvm-dev-9", SystemTime::now()), &RULES, now);
        assert_eq!(
            other,
            Err(IdentityError::Presigned(
                "x-tvm-server-id is not this deployment's"
            ))
        );
        let rules = PresignRules {
            sts_authority: "sts.eu-west-1.amazonaws.com",
            ..RULES
        };
        assert!(check_presigned(&presigned("tvm-prod-1", SystemTime::now()), &rules, now).is_err());
        let old = SystemTime::now() - Duration::from_secs(16 * 60);
        assert_eq!(
            check_presigned(&presigned("tvm-prod-1", old), &RULES, now),
            Err(IdentityError::Presigned(
                "x-amz-date is more than 15 minutes from now"
            ))
        );
    }

    #[test]
    fn parses_one_result_and_refuses_two() {
        let one = br#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><UserId>AIDA</UserId><Account>123456789012</Account><Arn>arn:aws:iam::123456789012:user/alice</Arn></GetCallerIdentityResult><ResponseMetadata><RequestId>x</RequestId></ResponseMetadata></GetCallerIdentityResponse>"#;
        assert_eq!(parse_caller_identity(one).unwrap().name, "alice");
        let two = br#"<GetCallerIdentityResponse><GetCallerIdentityResult><Account>123456789012</Account><Arn>arn:aws:iam::123456789012:user/alice</Arn></GetCallerIdentityResult><GetCallerIdentityResult><Account>123456789012</Account><Arn>arn:aws:iam::123456789012:user/root2</Arn></GetCallerIdentityResult></GetCallerIdentityResponse>"#;
        assert!(parse_caller_identity(two).is_err());
        let mismatch = br#"<GetCallerIdentityResponse><GetCallerIdentityResult><Account>999999999999</Account><Arn>arn:aws:iam::123456789012:user/alice</Arn></GetCallerIdentityResult></GetCallerIdentityResponse>"#;
        assert!(parse_caller_identity(mismatch).is_err());
        assert!(parse_caller_identity(b"<Error/>").is_err());
    }
}

mod fuzz {
    use super::super::*;
    use proptest::prelude::*;

    const RULES: PresignRules<'static> = PresignRules {
        server_id: "tvm-prod-1",
        sts_authority: "sts.us-east-1.amazonaws.com",
    };

    fn envelope() -> impl Strategy<Value = String> {
        let header = ("[a-zA-Z-]{1,24}", ".{0,80}");
        (
            prop::sample::select(vec!["POST", "GET", "post", ""]),
            prop::collection::vec(header, 0..10),
            prop_oneof![Just(GET_CALLER_IDENTITY_BODY.to_string()), ".{0,80}"],
        )
            .prop_map(|(method, headers, body)| {
                let env = serde_json::json!({"method": method, "headers": headers, "body": body});
                base64::engine::general_purpose::STANDARD.encode(env.to_string())
            })
    }

    proptest! {
        #[test]
        fn fuzz_identity_header_decoder_never_panics_on_any_string(s in ".{0,400}") {
            prop_assert!(check_presigned(&s, &RULES, Utc::now()).is_err());
        }

        #[test]
        fn fuzz_identity_envelopes_pass_only_with_an_allowed_signed_header_set(h in envelope()) {
            if let Ok(checked) = check_presigned(&h, &RULES, Utc::now()) {
                for (name, _) in &checked.headers {
                    prop_assert!(ALLOWED_HEADERS.contains(&name.as_str()));
                }
            }
        }

        #[test]
        fn fuzz_caller_identity_answers_never_panic(xml in ".{0,300}") {
            let _ = parse_caller_identity(xml.as_bytes());
        }
    }
}
