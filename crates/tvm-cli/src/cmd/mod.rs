//! One module per command (or family of commands); each command is a struct
//! with its own `run`.

pub mod approvals;
pub mod audit;
pub mod break_glass;
pub mod completions;
pub mod credential_process;
pub mod exec;
pub mod policy;
pub mod policy_store;
pub mod profiles;
pub mod serve;
pub mod sessions;
