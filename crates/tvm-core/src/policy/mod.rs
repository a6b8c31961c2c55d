//! Policy documents: one per profile, YAML or JSON, parsed and validated as a
//! whole. A document with any error is refused entirely; the errors name the
//! field and the problem.
//!
//! - `document`: the shape as written (serde, unknown keys refused);
//! - `parse`: from a document to the model, collecting every problem;
//! - `model`: the validated profile, its rules and their conditions;
//! - `time`: the weekly time windows rules may carry;
//! - `session_policy`: the session policy template;
//! - `diff`: what changes between two documents of a profile.

pub mod diff;
mod document;
mod model;
mod parse;
pub mod session_policy;
mod time;

pub use model::{Approval, BreakGlass, Conditions, Effect, PolicySet, Profile, Rule};
pub use parse::{parse_profile, valid_profile_name, FieldError, PolicyError, UNPINNED};
pub use session_policy::PolicyTemplate;
pub use time::TimeWindow;

/// Variables every rendering can use, filled from the caller and the vend.
pub const BUILTIN_VARS: &[&str] = &[
    "caller.account",
    "caller.partition",
    "caller.kind",
    "caller.name",
    "caller.role_name",
    "caller.user_name",
    "caller.session_name",
    "caller.org_id",
    "caller.issuer",
    "caller.subject",
    "profile",
    "session_id",
];

/// Is `var` filled by tvm for a bind (a builtin, or `claim.NAME`: an oidc
/// caller's claim)? A variable a caller does not have refuses its vend.
/// Session policies and tags take claims only through a bind.
pub fn builtin_var(var: &str) -> bool {
    BUILTIN_VARS.contains(&var) || var.strip_prefix("claim.").is_some_and(|n| !n.is_empty())
}

#[cfg(test)]
mod tests;
