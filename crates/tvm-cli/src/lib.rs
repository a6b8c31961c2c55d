//! The tvm client library: sign requests to tvm with SigV4 using the standard
//! AWS credential chain, optionally attach a presigned GetCallerIdentity, and
//! parse tvm's answers. The `tvm` binary is a thin CLI over this.

pub mod cache;
pub mod client;
pub mod people;
pub mod presign;
pub mod provider;
pub mod serve;
pub mod settings;

pub use client::{ClientError, Endpoint, TvmClient};
