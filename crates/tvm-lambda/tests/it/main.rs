//! The real `bootstrap`, driven through the Lambda runtime API, against the
//! moto emulator with IAM auth enforced. One emulator for the whole binary.

mod approvals;
mod aws_rules;
mod browser;
mod catalogue;
mod faults;
mod gates;
mod harness;
mod least_privilege;
mod notify;
mod oidc;
mod overlap;
mod presigned;
mod refusals;
mod revocation;
mod revocation_attacks;
mod revocation_kit;
mod revocation_review;
mod revocation_review3;
mod route_table;
mod terraform;
mod trust;
mod vend;
