//! Keys of the items tvm keeps in its DynamoDB tables beside the records.
//!
//! In the sessions table, gate items start with `#`, which no session id
//! (32 hex characters) does, and carry none of the indexed attributes, so
//! they never appear in session listings. In the approvals and break-glass
//! tables, records are `req#<id>` / `event#<id>` and each caller and profile
//! has one pointer, `open#<caller>#<profile>`, to what currently matters.

use super::RevocationScope;

/// The rate-limit counter of a caller and profile for one window.
pub fn rate(caller: &str, profile: &str, window_start: i64) -> String {
    format!("#rate#{caller}#{profile}#{window_start}")
}

/// The revocation marker the vend transaction checks.
pub fn revoked(scope: &RevocationScope) -> String {
    match scope {
        RevocationScope::Caller(caller) => revoked_caller(caller),
        RevocationScope::Pair { caller, profile } => revoked_pair(caller, profile),
    }
}

pub fn revoked_caller(caller: &str) -> String {
    format!("#revoked#caller#{caller}")
}

pub fn revoked_pair(caller: &str, profile: &str) -> String {
    format!("#revoked#pair#{caller}#{profile}")
}

/// The item that holds everything revoked (one attribute per entry).
pub const REVOCATIONS: &str = "#revocations";

pub fn request(id: &str) -> String {
    format!("req#{id}")
}

pub fn break_glass_event(id: &str) -> String {
    format!("event#{id}")
}

/// The pointer of a caller and profile to its open request or event.
pub fn open_pointer(caller: &str, profile: &str) -> String {
    format!("open#{caller}#{profile}")
}
