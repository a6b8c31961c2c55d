//! Signed policy documents. A document's signature travels in the same SSM
//! parameter, as its last line (a YAML comment), so that a document and its
//! signature always change together: no window in which one is new and the
//! other old, and one read per load.
//!
//! ```text
//! profile: orders-tenant
//! ...
//! # tvm-signature: v1 ECDSA_SHA_256 MEUCIQ...
//! ```
//!
//! What is signed is [`message`]: a domain string, the parameter's full name
//! (the deployment's prefix and the profile) and the SHA-256 of the document
//! (every byte before the signature line), so that a signature made for one
//! profile, or for the same profile of another deployment (a staging prefix),
//! does not verify elsewhere, and the message stays within KMS's 4096 bytes
//! for a RAW message whatever the document's size (SSM takes 8 KB). The signing key is an AWS KMS
//! asymmetric key; the function verifies with its public half.

use base64::Engine;

/// How a signature line starts.
pub const LINE_PREFIX: &str = "# tvm-signature: v1 ";
/// The first line of every signed message.
pub const DOMAIN: &str = "tvm-policy-v1";

/// The KMS signing algorithms tvm signs and verifies with. (RSASSA-PSS is
/// left out: moto salts it differently from AWS, so it cannot be tested
/// here, and PKCS #1 v1.5 is as good for signatures.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// ECC_NIST_P256 keys: ECDSA with SHA-256, DER signatures.
    EcdsaSha256,
    /// RSA keys (2048 bits or more): RSASSA-PKCS1-v1_5 with SHA-256.
    RsaPkcs1Sha256,
}

impl Algorithm {
    /// KMS's name (`SigningAlgorithm`).
    pub fn kms_name(self) -> &'static str {
        match self {
            Self::EcdsaSha256 => "ECDSA_SHA_256",
            Self::RsaPkcs1Sha256 => "RSASSA_PKCS1_V1_5_SHA_256",
        }
    }

    pub fn from_kms_name(name: &str) -> Option<Self> {
        match name {
            "ECDSA_SHA_256" => Some(Self::EcdsaSha256),
            "RSASSA_PKCS1_V1_5_SHA_256" => Some(Self::RsaPkcs1Sha256),
            _ => None,
        }
    }

    /// The algorithm tvm uses for a KMS key spec.
    pub fn for_key_spec(spec: &str) -> Option<Self> {
        match spec {
            "ECC_NIST_P256" => Some(Self::EcdsaSha256),
            "RSA_2048" | "RSA_3072" | "RSA_4096" => Some(Self::RsaPkcs1Sha256),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the document is not signed (no `# tvm-signature:` last line)")]
    Unsigned,
    #[error("the signature line is malformed")]
    Malformed,
    #[error("signed with {0}, but the signing key verifies {1}")]
    WrongAlgorithm(&'static str, &'static str),
    #[error("the signature does not verify: the document changed after signing, was signed for another profile, or with another key")]
    Invalid,
}

/// A parameter value split into its document and signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<'a> {
    pub document: &'a str,
    pub algorithm: Algorithm,
    pub signature: Vec<u8>,
}

/// What the key signs for `document` stored as the SSM parameter
/// `parameter` (`/tvm/policies/orders-tenant`; KMS `MessageType` RAW).
pub fn message(parameter: &str, document: &str) -> Vec<u8> {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(document.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{DOMAIN}\n{parameter}\nsha256:{hex}\n").into_bytes()
}

/// The document and its signature line's parts: the last non-empty line
/// must be a signature line.
pub fn split(value: &str) -> Result<Signed<'_>, SignatureError> {
    let body = value.trim_end_matches(['\n', '\r']);
    let (document, line) = match body.rfind('\n') {
        Some(i) => (&value[..=i], &body[i + 1..]),
        None => ("", body),
    };
    let rest = line
        .strip_prefix(LINE_PREFIX)
        .ok_or(SignatureError::Unsigned)?;
    let (alg, sig) = rest.split_once(' ').ok_or(SignatureError::Malformed)?;
    let algorithm = Algorithm::from_kms_name(alg).ok_or(SignatureError::Malformed)?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(sig.trim())
        .map_err(|_| SignatureError::Malformed)?;
    if signature.is_empty() || document.is_empty() {
        return Err(SignatureError::Malformed);
    }
    Ok(Signed {
        document,
        algorithm,
        signature,
    })
}

/// The document without its signature line, if it has one: what is
/// signed, and what `tvm policy sign` signs again.
pub fn unsigned(value: &str) -> String {
    match split(value) {
        Ok(s) => s.document.to_string(),
        Err(_) if value.ends_with('\n') || value.is_empty() => value.to_string(),
        Err(_) => format!("{value}\n"),
    }
}

/// `document` (as [`unsigned`] returns it) with its signature line.
pub fn attach(document: &str, algorithm: Algorithm, signature: &[u8]) -> String {
    let sig = base64::engine::general_purpose::STANDARD.encode(signature);
    format!("{document}{LINE_PREFIX}{} {sig}\n", algorithm.kms_name())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "profile: p\nrole_arn: arn:aws:iam::111122223333:role/r\nrules: []\n";

    #[test]
    fn a_signature_line_round_trips_and_what_is_signed_names_the_profile() {
        let doc = unsigned(DOC);
        assert_eq!(doc, DOC);
        let value = attach(&doc, Algorithm::EcdsaSha256, b"sig");
        let s = split(&value).unwrap();
        assert_eq!(s.document, DOC);
        assert_eq!(s.algorithm, Algorithm::EcdsaSha256);
        assert_eq!(s.signature, b"sig");
        // Signing again replaces the line, never stacks a second one.
        assert_eq!(unsigned(&value), DOC);
        assert_eq!(
            attach(&unsigned(&value), Algorithm::RsaPkcs1Sha256, b"x")
                .matches(LINE_PREFIX)
                .count(),
            1
        );
        // Without its last newline, and with trailing blank lines, the same.
        assert_eq!(split(value.trim_end()).unwrap().document, DOC);
        assert_eq!(split(&format!("{value}\n\n")).unwrap().document, DOC);
        assert_ne!(message("p", DOC), message("q", DOC));
        assert_ne!(message("p", DOC), message("p", &format!("{DOC} ")));
        let m = String::from_utf8(message("p", DOC)).unwrap();
        assert!(m.starts_with("tvm-policy-v1\np\nsha256:"), "{m}");
        assert_eq!(m.len(), "tvm-policy-v1\np\nsha256:\n".len() + 64);
    }

    #[test]
    fn only_a_last_line_of_the_exact_shape_is_a_signature() {
        assert_eq!(split(DOC), Err(SignatureError::Unsigned));
        let signed = attach(DOC, Algorithm::EcdsaSha256, b"sig");
        // A signature line followed by more document is no signature.
        assert_eq!(
            split(&format!("{signed}extra: 1\n")),
            Err(SignatureError::Unsigned)
        );
        for bad in [
            format!("{DOC}{LINE_PREFIX}ECDSA_SHA_256\n"),
            format!("{DOC}{LINE_PREFIX}RSASSA_PSS_SHA_256 c2ln\n"),
            format!("{DOC}{LINE_PREFIX}ECDSA_SHA_256 not*base64\n"),
            format!("{DOC}{LINE_PREFIX}ECDSA_SHA_256 \n"),
            format!("{LINE_PREFIX}ECDSA_SHA_256 c2ln\n"),
        ] {
            assert_eq!(split(&bad), Err(SignatureError::Malformed), "{bad}");
        }
        assert_eq!(unsigned("a: 1"), "a: 1\n");
    }
}
