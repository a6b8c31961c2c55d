//! Policy documents from SSM Parameter Store.

use aws_sdk_ssm::Client;

use super::{AwsError, Dependency};
use super::{BoxFut, PolicyParameter, PolicySource};

/// Reads every parameter directly under the policy prefix, decrypted.
pub struct SsmPolicies {
    client: Client,
    prefix: String,
}

impl SsmPolicies {
    pub fn new(client: Client, prefix: String) -> Self {
        Self { client, prefix }
    }
}

/// Bound on pages read per load (10 parameters a page).
const MAX_PAGES: usize = 100;

impl PolicySource for SsmPolicies {
    fn load(&self) -> BoxFut<'_, Result<Vec<PolicyParameter>, AwsError>> {
        Box::pin(async move {
            let mut out = Vec::new();
            let mut next: Option<String> = None;
            for _ in 0..MAX_PAGES {
                let page = self
                    .client
                    .get_parameters_by_path()
                    .path(&self.prefix)
                    .recursive(false)
                    .with_decryption(true)
                    .set_next_token(next.take())
                    .send()
                    .await
                    .map_err(|e| AwsError::unavailable(Dependency::Ssm, e))?;
                out.extend(page.parameters().iter().filter_map(|p| {
                    Some(PolicyParameter {
                        name: p.name()?.to_string(),
                        value: p.value()?.to_string(),
                    })
                }));
                match page.next_token() {
                    Some(t) if !t.is_empty() => next = Some(t.to_string()),
                    _ => return Ok(out),
                }
            }
            Err(AwsError::unavailable(
                Dependency::Ssm,
                "more than 1000 policy parameters",
            ))
        })
    }
}
