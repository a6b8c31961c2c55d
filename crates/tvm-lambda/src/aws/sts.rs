//! STS AssumeRole for vends. (The replay of presigned GetCallerIdentity
//! requests is the `sts` identity source's: `identity::replay`.)

use aws_sdk_sts::error::ProvideErrorMetadata;
use aws_sdk_sts::types::Tag;
use aws_sdk_sts::Client;
use chrono::{DateTime, Utc};

use tvm_core::vend::AssumeRole;

use super::{AwsError, BoxFut, Dependency, Issued, Issuer};

pub struct StsIssuer {
    client: Client,
}

impl StsIssuer {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl Issuer for StsIssuer {
    fn assume<'a>(&'a self, spec: &'a AssumeRole) -> BoxFut<'a, Result<Issued, AwsError>> {
        Box::pin(async move {
            let tags = spec
                .tags
                .iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| AwsError::unavailable(Dependency::Sts, e))?;
            let out = self
                .client
                .assume_role()
                .role_arn(&spec.role_arn)
                .role_session_name(&spec.role_session_name)
                .source_identity(&spec.source_identity)
                .duration_seconds(spec.duration_seconds as i32)
                .set_policy(spec.policy.clone())
                .set_tags((!tags.is_empty()).then_some(tags))
                .set_transitive_tag_keys(
                    (!spec.transitive_tag_keys.is_empty())
                        .then(|| spec.transitive_tag_keys.clone()),
                )
                .send()
                .await
                .map_err(|e| {
                    if e.code() == Some("PackedPolicyTooLarge") {
                        AwsError::PolicyTooLarge
                    } else {
                        AwsError::unavailable(Dependency::Sts, e)
                    }
                })?;
            let c = out.credentials().ok_or_else(|| {
                AwsError::unavailable(Dependency::Sts, "AssumeRole returned no credentials")
            })?;
            let expiration =
                DateTime::<Utc>::from_timestamp(c.expiration().secs(), 0).ok_or_else(|| {
                    AwsError::unavailable(Dependency::Sts, "AssumeRole returned a bad expiration")
                })?;
            Ok(Issued {
                access_key_id: c.access_key_id().to_string(),
                secret_access_key: c.secret_access_key().to_string(),
                session_token: c.session_token().to_string(),
                expiration,
            })
        })
    }
}
