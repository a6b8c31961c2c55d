//! The roots the function's TLS connections trust, built once at cold start
//! without reading the filesystem, and, only when `TVM_CA_BUNDLE` names one,
//! the certificates of that one PEM file besides them (a private CA: a
//! TLS-inspecting egress proxy, an OIDC issuer behind a corporate CA).
//!
//! - The AWS SDK's clients and the presigned identity's replay to STS trust
//!   Amazon Trust Services' roots, the ones every AWS endpoint's
//!   certificate chains to (Amazon Root CA 1-4 and the Starfield Services
//!   root they are cross-signed by): a CA outside them cannot stand in for
//!   STS or DynamoDB. The SDK takes roots as PEM and parses them again for
//!   each client it builds, so five, not 150. In the China partition, whose
//!   endpoints chain elsewhere, they trust Mozilla's roots.
//! - OIDC issuers' keys can be anywhere on the web: that client trusts
//!   Mozilla's roots (`webpki-roots`, the set rustls and Firefox use),
//!   compiled in as trust anchors, nothing to parse.
//!
//! The system's store is not read: on Linux that is a bundle and a directory
//! of about 150 files, scanned again by each TLS stack, which took half the
//! init of a cold start (docs/performance.md). A deployment that needs the
//! system's roots points `TVM_CA_BUNDLE` at its bundle file.

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// What the function's TLS clients trust, each with the bundle's
/// certificates: Mozilla's roots (`web`, OIDC issuers), and the AWS
/// endpoints' roots as a store (`aws`, the presigned replay) and as PEM
/// (`pem`, the SDK's clients).
pub struct Roots {
    pub web: Arc<rustls::RootCertStore>,
    pub aws: Arc<rustls::RootCertStore>,
    pub pem: Vec<u8>,
    /// Certificates read from `TVM_CA_BUNDLE`.
    pub extra: usize,
}

impl Roots {
    /// The compiled-in roots for `partition`, and the certificates of
    /// `bundle` when given. A bundle that cannot be read, holds no
    /// certificate or one that does not parse refuses the start: a
    /// deployment that asked for a CA must not run without it.
    pub fn load(bundle: Option<&Path>, partition: &str) -> Result<Self, String> {
        let mut web = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let compiled_in =
            |e: &dyn std::fmt::Display| format!("a compiled-in root does not parse: {e}");
        let mut aws = rustls::RootCertStore::empty();
        let mut pem = Vec::new();
        if partition == "aws-cn" {
            for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
                aws.add(cert.clone()).map_err(|e| compiled_in(&e))?;
                push_pem(&mut pem, cert);
            }
        } else {
            for cert in CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES_PEM) {
                aws.add(cert.map_err(|e| compiled_in(&e))?)
                    .map_err(|e| compiled_in(&e))?;
            }
            pem.extend_from_slice(AMAZON_TRUST_SERVICES_PEM);
        }
        let mut extra = 0;
        if let Some(path) = bundle {
            let shown = path.display();
            let text = std::fs::read(path)
                .map_err(|e| format!("TVM_CA_BUNDLE {shown} could not be read: {e}"))?;
            for cert in CertificateDer::pem_slice_iter(&text) {
                let cert = cert.map_err(|e| {
                    format!("TVM_CA_BUNDLE {shown} is not a PEM file of certificates: {e}")
                })?;
                let unparsed = |e: rustls::Error| {
                    format!(
                        "TVM_CA_BUNDLE {shown}: certificate {} does not parse: {e}",
                        extra + 1
                    )
                };
                web.add(cert.clone()).map_err(unparsed)?;
                aws.add(cert.clone()).map_err(unparsed)?;
                push_pem(&mut pem, &cert);
                extra += 1;
            }
            if extra == 0 {
                return Err(format!("TVM_CA_BUNDLE {shown} holds no certificate"));
            }
        }
        Ok(Self {
            web: Arc::new(web),
            aws: Arc::new(aws),
            pem,
            extra,
        })
    }

    /// A rustls client configuration (ring, TLS 1.2+) over the web's roots.
    pub fn web_client(&self) -> Result<rustls::ClientConfig, String> {
        client_config(&self.web)
    }

    /// A rustls client configuration over the AWS endpoints' roots.
    pub fn aws_client(&self) -> Result<rustls::ClientConfig, String> {
        client_config(&self.aws)
    }
}

fn client_config(roots: &Arc<rustls::RootCertStore>) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots.clone())
        .with_no_client_auth())
}

/// Amazon Trust Services' roots, compiled in: reading them out of Mozilla's
/// 150 at each start (every certificate's pages faulted in) was a tenth of a
/// millisecond of the cold start. The tests check the file against the crate.
const AMAZON_TRUST_SERVICES_PEM: &[u8] = include_bytes!("../certs/amazon-trust-services.pem");

fn push_pem(out: &mut Vec<u8>, cert: &CertificateDer<'_>) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
    out.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(b"-----END CERTIFICATE-----\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The common names of Amazon Trust Services' roots.
    const AMAZON_TRUST_SERVICES: [&str; 5] = [
        "Amazon Root CA 1",
        "Amazon Root CA 2",
        "Amazon Root CA 3",
        "Amazon Root CA 4",
        "Starfield Services Root Certificate Authority - G2",
    ];

    /// Among Mozilla's roots, the self-signed certificates whose DER carries
    /// one of those names (as subject and issuer; no other root names them).
    fn amazon_roots() -> Vec<&'static CertificateDer<'static>> {
        webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter(|c| {
                AMAZON_TRUST_SERVICES
                    .iter()
                    .any(|name| memchr::memmem::find(c.as_ref(), name.as_bytes()).is_some())
            })
            .collect()
    }

    #[test]
    fn the_compiled_in_amazon_roots_are_mozillas_amazon_trust_services_roots() {
        let file: Vec<CertificateDer> = CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES_PEM)
            .collect::<Result<_, _>>()
            .unwrap();
        let mozilla = amazon_roots();
        assert_eq!(
            mozilla.len(),
            AMAZON_TRUST_SERVICES.len(),
            "one root per name"
        );
        assert_eq!(file.len(), mozilla.len());
        for cert in mozilla {
            assert!(
                file.contains(cert),
                "certs/amazon-trust-services.pem lacks a root webpki-root-certs has: regenerate it"
            );
        }
    }

    #[test]
    fn the_sdk_trusts_amazon_trust_services_alone_and_the_identity_sources_mozillas_roots() {
        let roots = Roots::load(None, "aws").unwrap();
        let sdk: Vec<CertificateDer> = CertificateDer::pem_slice_iter(&roots.pem)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(sdk.len(), AMAZON_TRUST_SERVICES.len(), "one root per name");
        for name in AMAZON_TRUST_SERVICES {
            let holding = sdk
                .iter()
                .filter(|c| memchr::memmem::find(c.as_ref(), name.as_bytes()).is_some())
                .count();
            assert_eq!(holding, 1, "{name}");
        }
        assert_eq!(roots.aws.roots.len(), AMAZON_TRUST_SERVICES.len());
        assert!(roots.web.roots.len() > 100, "Mozilla's roots");
        assert_eq!(roots.web.roots.len(), webpki_roots::TLS_SERVER_ROOTS.len());
        assert_eq!(roots.extra, 0);
        // China's endpoints chain elsewhere: Mozilla's roots there.
        let cn = Roots::load(None, "aws-cn").unwrap();
        assert_eq!(
            cn.aws.roots.len(),
            webpki_root_certs::TLS_SERVER_ROOT_CERTS.len()
        );
    }

    #[test]
    fn a_bundle_adds_its_certificates_and_a_bad_one_refuses_the_start() {
        let dir = std::env::temp_dir().join(format!("tvm-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let base = Roots::load(None, "aws").unwrap();
        // One of the compiled-in certificates, as a private CA would be.
        let mut one = Vec::new();
        push_pem(&mut one, &webpki_root_certs::TLS_SERVER_ROOT_CERTS[0]);
        let good = dir.join("good.pem");
        std::fs::write(&good, &one).unwrap();
        let roots = Roots::load(Some(&good), "aws").unwrap();
        assert_eq!(roots.extra, 1);
        assert_eq!(roots.web.roots.len(), base.web.roots.len() + 1);
        assert_eq!(roots.aws.roots.len(), base.aws.roots.len() + 1);
        assert!(roots.pem.ends_with(&one), "the SDK's client trusts it too");

        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let garbled = dir.join("garbled.pem");
        std::fs::write(
            &garbled,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        for (path, says) in [
            (dir.join("missing.pem"), "could not be read"),
            (empty, "holds no certificate"),
            (garbled, "does not parse"),
        ] {
            let e = Roots::load(Some(&path), "aws").err().unwrap();
            assert!(e.contains(says), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
