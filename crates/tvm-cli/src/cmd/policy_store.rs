//! `tvm policy push|pull|diff|sign`: policy documents between files and SSM
//! Parameter Store (one parameter per profile under the prefix, as the
//! function reads them), signed with an AWS KMS asymmetric key when asked.

use std::path::Path;

use aws_config::BehaviorVersion;
use aws_sdk_ssm::types::{ParameterTier, ParameterType};
use tvm_core::policy::diff::{diff, Change};
use tvm_core::policy::{parse_profile, valid_profile_name};
use tvm_core::signature::{self, Algorithm};

use crate::error::CliError;

/// SSM's largest parameter value (advanced tier); standard takes 4096.
pub const MAX_PARAMETER_BYTES: usize = 8192;
const STANDARD_TIER_BYTES: usize = 4096;

fn aws<E: std::error::Error + 'static>(what: &str) -> impl FnOnce(E) -> CliError + '_ {
    move |e| {
        CliError::Usage(format!(
            "{what}: {}",
            aws_sdk_ssm::error::DisplayErrorContext(e)
        ))
    }
}

/// The parameters under a prefix, and the signing key's client.
pub struct Store {
    ssm: aws_sdk_ssm::Client,
    kms: aws_sdk_kms::Client,
    prefix: String,
}

/// A local document, checked.
pub struct Local {
    pub file: String,
    pub profile: String,
    pub text: String,
}

/// Read and validate `files`: every problem of every file, or the documents.
pub fn read_valid(files: &[String]) -> Result<Vec<Local>, CliError> {
    let mut out: Vec<Local> = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
        // A signed document is parsed as the function parses it: without its
        // signature line (a JSON document cannot carry the comment).
        match parse_profile(&signature::unsigned(&text), None) {
            Ok(p) => {
                if let Some(first) = out.iter().find(|l| l.profile == p.name) {
                    problems.push(format!("{file}: profile {} is also {}", p.name, first.file));
                }
                out.push(Local {
                    file: file.clone(),
                    profile: p.name.clone(),
                    text,
                });
            }
            Err(e) => problems.extend(e.errors.iter().map(|err| format!("{file}: {err}"))),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(CliError::Usage(format!(
            "{}\nnothing was stored: fix the documents and run again",
            problems.join("\n")
        )))
    }
}

impl Store {
    pub async fn from_env(prefix: &str) -> Result<Self, CliError> {
        if !prefix.starts_with('/') || !prefix.ends_with('/') || prefix.len() < 3 {
            return Err("--prefix must start and end with '/', such as /tvm/policies/".into());
        }
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .http_client(tvm_client::https_client())
            .load()
            .await;
        Ok(Self {
            ssm: aws_sdk_ssm::Client::new(&sdk),
            kms: aws_sdk_kms::Client::new(&sdk),
            prefix: prefix.to_string(),
        })
    }

    fn name(&self, profile: &str) -> String {
        format!("{}{profile}", self.prefix)
    }

    /// The stored value of `profile`, decrypted; none if there is none.
    pub async fn get(&self, profile: &str) -> Result<Option<String>, CliError> {
        let name = self.name(profile);
        match self
            .ssm
            .get_parameter()
            .name(&name)
            .with_decryption(true)
            .send()
            .await
        {
            Ok(out) => Ok(out.parameter().and_then(|p| p.value()).map(str::to_string)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_not_found()) =>
            {
                Ok(None)
            }
            Err(e) => Err(aws(&format!("reading {name}"))(e)),
        }
    }

    /// Every stored profile (name, value), or those named.
    pub async fn list(&self) -> Result<Vec<(String, String)>, CliError> {
        let mut out = Vec::new();
        let mut next = None;
        // 10 a page: at most 1000 profiles, as the function reads.
        for _ in 0..100 {
            let page = self
                .ssm
                .get_parameters_by_path()
                .path(&self.prefix)
                .recursive(false)
                .with_decryption(true)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(aws(&format!("listing {}", self.prefix)))?;
            for p in page.parameters() {
                if let (Some(name), Some(value)) = (p.name(), p.value()) {
                    let profile = name.strip_prefix(&self.prefix).unwrap_or(name);
                    out.push((profile.to_string(), value.to_string()));
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
        Err(format!("more than 1000 parameters under {}", self.prefix).into())
    }

    /// Store `value` as `profile`'s document.
    pub async fn put(
        &self,
        profile: &str,
        value: &str,
        secure: Option<Option<&str>>,
    ) -> Result<(), CliError> {
        let name = self.name(profile);
        let tier = if value.len() > STANDARD_TIER_BYTES {
            ParameterTier::Advanced
        } else {
            ParameterTier::Standard
        };
        let mut put = self
            .ssm
            .put_parameter()
            .name(&name)
            .value(value)
            .overwrite(true)
            .tier(tier)
            .description("tvm policy document (tvm policy push)");
        put = match secure {
            None => put.r#type(ParameterType::String),
            Some(key) => put
                .r#type(ParameterType::SecureString)
                .set_key_id(key.map(str::to_string)),
        };
        put.send().await.map_err(aws(&format!("storing {name}")))?;
        Ok(())
    }

    /// What KMS signs and verifies for `document` as `profile`'s parameter.
    fn signed_message(&self, profile: &str, document: &str) -> aws_sdk_kms::primitives::Blob {
        aws_sdk_kms::primitives::Blob::new(signature::message(&self.name(profile), document))
    }

    /// Does `value`, stored as `profile`'s parameter, carry a signature that
    /// `key` verifies (KMS Verify)? The reason when not.
    pub async fn verify(
        &self,
        key: &str,
        profile: &str,
        value: &str,
    ) -> Result<Result<(), String>, CliError> {
        let signed = match signature::split(value) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let out = self
            .kms
            .verify()
            .key_id(key)
            .message(self.signed_message(profile, signed.document))
            .message_type(aws_sdk_kms::types::MessageType::Raw)
            .signature(aws_sdk_kms::primitives::Blob::new(signed.signature))
            .signing_algorithm(aws_sdk_kms::types::SigningAlgorithmSpec::from(
                signed.algorithm.kms_name(),
            ))
            .send()
            .await;
        match out {
            Ok(o) if o.signature_valid() => Ok(Ok(())),
            Ok(_) => Ok(Err(signature::SignatureError::Invalid.to_string())),
            // KMS answers an invalid signature with KMSInvalidSignatureException.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_kms_invalid_signature_exception()) =>
            {
                Ok(Err(signature::SignatureError::Invalid.to_string()))
            }
            Err(e) => Err(aws(&format!("verifying with KMS key {key}"))(e)),
        }
    }

    /// `document` (without a signature) signed with `key` for `profile`'s
    /// parameter under this store's prefix.
    pub async fn sign(&self, key: &str, profile: &str, document: &str) -> Result<String, CliError> {
        let public = self
            .kms
            .get_public_key()
            .key_id(key)
            .send()
            .await
            .map_err(aws(&format!("reading KMS key {key}")))?;
        let spec = public
            .key_spec()
            .map(|s| s.as_str().to_string())
            .or_else(|| {
                #[allow(deprecated)]
                public
                    .customer_master_key_spec()
                    .map(|s| s.as_str().to_string())
            })
            .unwrap_or_default();
        if public.key_usage() != Some(&aws_sdk_kms::types::KeyUsageType::SignVerify) {
            return Err(format!("KMS key {key} is not a SIGN_VERIFY key").into());
        }
        let algorithm = Algorithm::for_key_spec(&spec).ok_or_else(|| {
            format!("KMS key {key} is {spec}: tvm signs with ECC_NIST_P256 or RSA_2048/3072/4096 SIGN_VERIFY keys")
        })?;
        let signed = self
            .kms
            .sign()
            .key_id(key)
            .message(self.signed_message(profile, document))
            .message_type(aws_sdk_kms::types::MessageType::Raw)
            .signing_algorithm(aws_sdk_kms::types::SigningAlgorithmSpec::from(
                algorithm.kms_name(),
            ))
            .send()
            .await
            .map_err(aws(&format!("signing with KMS key {key}")))?;
        let sig = signed
            .signature()
            .ok_or("KMS returned no signature")?
            .as_ref();
        Ok(signature::attach(document, algorithm, sig))
    }
}

/// What `tvm` prints for the changes of one profile.
pub fn describe(profile: &str, stored: Option<&str>, local: &str) -> Result<String, CliError> {
    let Some(stored) = stored else {
        return Ok(format!("{profile}: new profile\n"));
    };
    let changes: Vec<Change> = match diff(&signature::unsigned(stored), &signature::unsigned(local))
    {
        Ok(c) => c,
        // Whatever is stored (hand-edited, planted) is replaced as a whole.
        Err(e) => {
            return Ok(format!(
                "{profile}: the stored document is not readable ({e}); replaced as a whole\n"
            ))
        }
    };
    let signature_changed = signature::split(stored).ok().map(|s| s.signature)
        != signature::split(local).ok().map(|s| s.signature);
    let mut out = String::new();
    if changes.is_empty() && !signature_changed && stored.trim_end() == local.trim_end() {
        out.push_str(&format!("{profile}: unchanged\n"));
        return Ok(out);
    }
    out.push_str(&format!("{profile}:\n"));
    for c in &changes {
        out.push_str(&format!("  {c}\n"));
    }
    if signature_changed {
        out.push_str("  ~ signature\n");
    } else if changes.is_empty() {
        out.push_str("  ~ formatting or comments only\n");
    }
    Ok(out)
}

/// Write `value` as `dir/PROFILE.yaml`.
pub fn write_profile(dir: &Path, profile: &str, value: &str) -> Result<String, CliError> {
    if !valid_profile_name(profile) {
        return Err(
            format!("stored parameter {profile:?} is not a profile name; not written").into(),
        );
    }
    let path = dir.join(format!("{profile}.yaml"));
    let mut text = value.to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path.display().to_string())
}

/// `value` if it fits a parameter.
pub fn check_size(file: &str, value: &str) -> Result<(), CliError> {
    if value.len() > MAX_PARAMETER_BYTES {
        return Err(format!(
            "{file}: {} bytes; an SSM parameter holds at most {MAX_PARAMETER_BYTES} (advanced tier)",
            value.len()
        )
        .into());
    }
    Ok(())
}
