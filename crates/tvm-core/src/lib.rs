//! tvm's rules, with no I/O. A new engineer can read this crate alone and
//! know every rule tvm enforces:
//!
//! - `principal`: callers as parsed principals, role ARNs, the stable principal;
//! - `admission`: who may be evaluated at all (allowed accounts and orgs);
//! - `oidc`: callers with an OpenID Connect token: the claims checked;
//! - `policy`: documents, their validation, the profile model, time windows;
//! - `decision`: may this caller have this profile now (a grant or a denial);
//! - `vend`: a grant becomes a plan (the AssumeRole call and the session record);
//! - `overlap`: what a container remembers to vend in one round trip;
//! - `render`, `template`, `glob`: rendering session policies and tags;
//! - `approval`: approval requests and break-glass events, their states and actors;
//! - `revocation`: revocation terms and the revocation policy on protected roles;
//! - `status`: the states of sessions, requests and events, one way;
//! - `rate`: rate-limit windows;
//! - `limits`: AWS's documented limits checked before calling AWS;
//! - `audit`: the bypass audit over CloudTrail events and session records;
//! - `api`: the wire types shared with the client.

pub mod admission;
pub mod api;
pub mod approval;
pub mod audit;
pub mod decision;
pub mod glob;
pub mod limits;
pub mod oidc;
pub mod overlap;
pub mod policy;
pub mod principal;
pub mod rate;
pub mod render;
pub mod revocation;
pub mod signature;
pub mod status;
pub mod template;
pub mod vend;
