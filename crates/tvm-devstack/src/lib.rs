//! The local stack tvm's tests and `make demo` run on: the moto emulator
//! from the project's venv, seeded by `scripts/bootstrap.py`; a recording,
//! fault-injecting proxy in front of it; a Lambda runtime API emulator that
//! drives the real `bootstrap`; an HTTP front like a function URL; a local
//! OIDC issuer; a static server for a browser test's page; and CloudTrail's
//! LookupEvents over recorded events.
//! Never deployed.

pub mod cloudtrail;
pub mod events;
pub mod gateway;
pub mod iam_auth;
pub mod oidc;
pub mod pages;
pub mod proxy;
pub mod runtime;
pub mod serve;
pub mod stack;
pub mod testing;
