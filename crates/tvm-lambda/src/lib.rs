//! The tvm Lambda function: configuration, identity, AWS adapters, the policy
//! cache and the handler. `main.rs` wires them together at cold start.

pub mod aws;
pub mod config;
pub mod error;
#[doc(hidden)]
pub mod fakes;
pub mod identity;
pub mod policies;
pub mod routes;
