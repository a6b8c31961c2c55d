//! tvm's rules, with no I/O: the policy model and its validation, the
//! decision, the rendering of session policies, caller principals, and the
//! API types shared with the client.

pub mod api;
pub mod decision;
pub mod glob;
pub mod limits;
pub mod policy;
pub mod principal;
pub mod render;
pub mod revocation;
pub mod template;
