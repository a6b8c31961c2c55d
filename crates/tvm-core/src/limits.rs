//! AWS's documented limits that tvm checks before it calls AWS, so that a
//! vend fails with a clear error instead of an STS refusal.

/// STS bounds for a chained AssumeRole (tvm's role assumes the profile
/// role): role chaining caps a session at one hour.
pub const MIN_DURATION: u32 = 900;
pub const MAX_DURATION: u32 = 3600;

/// Session tags per AssumeRole, and the size of a key and of a value.
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_KEY: usize = 128;
pub const MAX_TAG_VALUE: usize = 256;

/// STS limit on the plain-text inline session policy, in characters.
pub const MAX_SESSION_POLICY_CHARS: usize = 2048;

/// `[\w+=,.@-]{2,64}`: SourceIdentity and RoleSessionName.
pub const MIN_STS_NAME: usize = 2;
pub const MAX_STS_NAME: usize = 64;
