//! The tvm Lambda function: I/O and orchestration around `tvm_core`'s rules.
//!
//! - `app`: the state built once at cold start, one invocation, announcements;
//! - `event`: Lambda events to HTTP requests and answers back, stages, ids;
//! - `routes`: the route table, one dispatch, the decision log line, one
//!   file per resource;
//! - `identity`: the ordered identity sources (API Gateway, presigned STS);
//! - `aws`: the small traits the handler sees AWS through, and the adapters;
//! - `policies`: the in-memory policy set, refreshed off the critical path;
//! - `config`: the environment, read once;
//! - `error`: the one place failures become statuses and codes;
//! - `fakes`: in-memory adapters for fast tests and the benchmark.
//!
//! `main.rs` wires them together.

pub mod app;
pub mod aws;
pub mod config;
pub mod error;
pub mod event;
#[doc(hidden)]
pub mod fakes;
pub mod identity;
pub mod policies;
pub mod routes;
pub mod tls;
