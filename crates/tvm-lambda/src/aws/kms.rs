//! The policy signing key (`TVM_POLICY_SIGNING_KEY`): its public half read
//! once from KMS (GetPublicKey) on the first policy load, then every
//! document verified with it locally (ring), never a KMS call per load.

use std::sync::Arc;

use aws_sdk_kms::Client;
use ring::signature::{UnparsedPublicKey, VerificationAlgorithm};
use tvm_core::signature::{self, Algorithm, SignatureError};

use super::{AwsError, Dependency};

/// A public key documents are verified with.
pub struct PolicyKey {
    algorithm: Algorithm,
    /// What ring verifies with: the uncompressed point (P-256) or the
    /// PKCS #1 RSAPublicKey (RSA).
    public: Vec<u8>,
}

impl PolicyKey {
    /// From a KMS key spec and its DER SubjectPublicKeyInfo.
    pub fn from_spki(spec: &str, spki: &[u8]) -> Result<Self, String> {
        let algorithm = Algorithm::for_key_spec(spec).ok_or_else(|| {
            format!("key spec {spec}: tvm verifies ECC_NIST_P256 or RSA_2048/3072/4096 keys")
        })?;
        let public = spki_key(spki).ok_or("the public key is not a DER SubjectPublicKeyInfo")?;
        if algorithm == Algorithm::EcdsaSha256 && (public.len() != 65 || public[0] != 4) {
            return Err("the P-256 public key is not an uncompressed point".into());
        }
        Ok(Self {
            algorithm,
            public: public.to_vec(),
        })
    }

    /// The document in the SSM parameter `parameter` (its full name) of
    /// value `value`, if its signature verifies with this key.
    pub fn verify<'a>(&self, parameter: &str, value: &'a str) -> Result<&'a str, SignatureError> {
        let signed = signature::split(value)?;
        if signed.algorithm != self.algorithm {
            return Err(SignatureError::WrongAlgorithm(
                signed.algorithm.kms_name(),
                self.algorithm.kms_name(),
            ));
        }
        let alg: &'static dyn VerificationAlgorithm = match self.algorithm {
            Algorithm::EcdsaSha256 => &ring::signature::ECDSA_P256_SHA256_ASN1,
            Algorithm::RsaPkcs1Sha256 => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        };
        UnparsedPublicKey::new(alg, &self.public)
            .verify(
                &signature::message(parameter, signed.document),
                &signed.signature,
            )
            .map_err(|_| SignatureError::Invalid)?;
        Ok(signed.document)
    }
}

/// One DER element: (tag, content, the rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 2 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The key bits of a SubjectPublicKeyInfo: SEQUENCE { AlgorithmIdentifier,
/// BIT STRING }.
fn spki_key(spki: &[u8]) -> Option<&[u8]> {
    let (0x30, body, []) = tlv(spki)? else {
        return None;
    };
    let (0x30, _algorithm, rest) = tlv(body)? else {
        return None;
    };
    let (0x03, bits, []) = tlv(rest)? else {
        return None;
    };
    match bits.split_first()? {
        (0, key) if !key.is_empty() => Some(key),
        _ => None,
    }
}

/// The signing key of the deployment, read from KMS on first use.
pub struct PolicySigning {
    client: Client,
    key_id: String,
    key: tokio::sync::OnceCell<Arc<PolicyKey>>,
}

impl PolicySigning {
    pub fn new(client: Client, key_id: String) -> Self {
        Self {
            client,
            key_id,
            key: tokio::sync::OnceCell::new(),
        }
    }

    /// The public key: fetched once; a failed fetch is tried again on the
    /// next load (until then nothing is served: fail closed).
    pub async fn key(&self) -> Result<Arc<PolicyKey>, AwsError> {
        self.key
            .get_or_try_init(|| async {
                let out = self
                    .client
                    .get_public_key()
                    .key_id(&self.key_id)
                    .send()
                    .await
                    .map_err(|e| AwsError::unavailable(Dependency::Kms, e))?;
                let spec = out
                    .key_spec()
                    .map(|s| s.as_str().to_string())
                    .or_else(|| {
                        #[allow(deprecated)]
                        out.customer_master_key_spec()
                            .map(|s| s.as_str().to_string())
                    })
                    .unwrap_or_default();
                if out.key_usage() != Some(&aws_sdk_kms::types::KeyUsageType::SignVerify) {
                    return Err(AwsError::unavailable(
                        Dependency::Kms,
                        "TVM_POLICY_SIGNING_KEY is not a SIGN_VERIFY key",
                    ));
                }
                let der = out.public_key().map(|b| b.as_ref()).unwrap_or_default();
                let key = PolicyKey::from_spki(&spec, der)
                    .map_err(|e| AwsError::unavailable(Dependency::Kms, e))?;
                tracing::info!(key_id = %self.key_id, spec = %spec, "policy signing key loaded");
                Ok(Arc::new(key))
            })
            .await
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

    /// A P-256 key pair and its public half as KMS hands it over (SPKI).
    fn key_pair() -> (EcdsaKeyPair, Vec<u8>) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        // id-ecPublicKey + prime256v1, then the point.
        let mut spki = hex_bytes("3059301306072a8648ce3d020106082a8648ce3d030107034200");
        spki.extend_from_slice(pair.public_key().as_ref());
        (pair, spki)
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn sign(pair: &EcdsaKeyPair, profile: &str, doc: &str) -> String {
        let sig = pair
            .sign(&SystemRandom::new(), &signature::message(profile, doc))
            .unwrap();
        signature::attach(doc, Algorithm::EcdsaSha256, sig.as_ref())
    }

    const DOC: &str = "profile: p\nrole_arn: arn:aws:iam::111122223333:role/r\nrules: []\n";

    #[test]
    fn a_signed_document_verifies_and_a_changed_renamed_or_unsigned_one_does_not() {
        let (pair, spki) = key_pair();
        let key = PolicyKey::from_spki("ECC_NIST_P256", &spki).unwrap();
        let value = sign(&pair, "p", DOC);
        assert_eq!(key.verify("p", &value), Ok(DOC));
        // Changed after signing: one character of the document.
        let changed = value.replacen("rules: []", "rules: [ ]", 1);
        assert_eq!(key.verify("p", &changed), Err(SignatureError::Invalid));
        // Signed for another profile.
        assert_eq!(key.verify("q", &value), Err(SignatureError::Invalid));
        assert_eq!(key.verify("p", DOC), Err(SignatureError::Unsigned));
        // Another key's signature.
        let (other, _) = key_pair();
        assert_eq!(
            key.verify("p", &sign(&other, "p", DOC)),
            Err(SignatureError::Invalid)
        );
        // An RSA-labelled signature for an ECDSA key.
        let relabelled = value.replace("ECDSA_SHA_256", "RSASSA_PKCS1_V1_5_SHA_256");
        assert!(matches!(
            key.verify("p", &relabelled),
            Err(SignatureError::WrongAlgorithm(..))
        ));
    }

    #[test]
    fn only_supported_key_specs_and_well_formed_keys_load() {
        let (_, spki) = key_pair();
        assert!(PolicyKey::from_spki("ECC_NIST_P384", &spki).is_err());
        assert!(PolicyKey::from_spki("SYMMETRIC_DEFAULT", &spki).is_err());
        assert!(PolicyKey::from_spki("ECC_NIST_P256", &spki[..40]).is_err());
        assert!(PolicyKey::from_spki("ECC_NIST_P256", b"").is_err());
        let mut trailing = spki.clone();
        trailing.push(0);
        assert!(PolicyKey::from_spki("ECC_NIST_P256", &trailing).is_err());
    }
}
