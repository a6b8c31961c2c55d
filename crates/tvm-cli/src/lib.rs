//! The tvm client library: sign requests to tvm with SigV4 using the standard
//! AWS credential chain, optionally attach a presigned GetCallerIdentity, and
//! parse tvm's answers. The `tvm` binary is a thin CLI over this.

pub mod api;
pub mod cache;
pub mod client;
pub mod presign;
pub mod provider;
pub mod serve;
pub mod settings;

pub use client::{ClientError, Endpoint, TvmClient};

/// An HTTPS client for AWS SDK clients in this workspace, which builds the
/// SDK without its default TLS stack: rustls on ring, the system's roots.
/// Pass it to `aws_config::defaults(..).http_client(..)`.
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}
