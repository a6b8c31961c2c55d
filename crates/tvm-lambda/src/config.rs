//! Configuration, read once from the environment at cold start.

use std::time::Duration;

use tvm_core::glob::Glob;
use tvm_core::policy::UNPINNED;
use tvm_core::principal::pins_account;
use tvm_core::rate::RateLimit;

/// Which identity sources the function accepts (`TVM_IDENTITY_MODES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityModes {
    /// API Gateway / function URL IAM request context.
    pub apigw: bool,
    /// Presigned STS GetCallerIdentity in the `X-Tvm-Identity` header.
    pub sts: bool,
    /// `Authorization: Bearer <JWT>`, verified by tvm with its issuer's keys.
    pub jwt: bool,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub policy_prefix: String,
    pub policy_ttl: Duration,
    /// A policy set older than this is not served (fail closed) if refreshes keep failing.
    pub policy_max_stale: Duration,
    pub sessions_table: String,
    pub approvals_table: String,
    pub break_glass_table: String,
    pub identity_modes: IdentityModes,
    pub server_id: Option<String>,
    pub allowed_accounts: Vec<String>,
    pub allowed_org_ids: Vec<String>,
    /// The STS endpoint presigned identities are replayed to.
    pub sts_endpoint: String,
    /// Upper bound on one AWS operation, retries included.
    pub aws_timeout: Duration,
    /// How long session items outlive their credentials before TTL removes them.
    pub session_retention: Duration,
    /// Vends per caller principal and profile, for profiles without their own limit.
    pub rate_limit: RateLimit,
    /// Who may list and revoke any session and revoke callers (the security team).
    pub admins: Vec<Glob>,
    /// SNS topic for approval, break-glass and revocation events.
    pub notify_topic_arn: Option<String>,
    /// The partition of the region the function runs in (`aws`, `aws-cn`, ...).
    pub partition: String,
    /// Path and name of the revoker role in every account (`TVM_REVOKER_ROLE`).
    pub revoker_role: String,
    /// Path and name of the revocation policy in every account (`TVM_REVOCATION_POLICY`).
    pub revocation_policy: String,
    /// Accounts revocations are written to besides those of the profiles'
    /// roles (`TVM_REVOCATION_ACCOUNTS`): where chained sessions may land.
    pub revocation_accounts: Vec<String>,
    /// The `service` dimension of the metrics: the function's name.
    pub service: String,
    /// Browser origins allowed to call tvm (`TVM_CORS_ORIGINS`); none: no CORS.
    pub cors_origins: Vec<String>,
    /// Issuers whose tokens name oidc callers (`TVM_JWT_ISSUERS`): for the
    /// `jwt` mode and for an API Gateway JWT authorizer alike.
    pub jwt_issuers: Vec<String>,
    /// Audiences a token must be for (`TVM_JWT_AUDIENCES`); required by the
    /// `jwt` mode.
    pub jwt_audiences: Vec<String>,
    /// How old an issuer's keys may be and still verify tokens, when every
    /// refresh since failed (`TVM_JWKS_MAX_AGE_SECONDS`).
    pub jwks_max_age: Duration,
    /// The KMS key that signs policy documents (`TVM_POLICY_SIGNING_KEY`:
    /// key id, key ARN, alias name or alias ARN). When set, a document whose
    /// signature does not verify is refused.
    pub policy_signing_key: Option<String>,
    /// A PEM file of CA certificates trusted besides the compiled-in roots
    /// (`TVM_CA_BUNDLE`; see the `tls` module).
    pub ca_bundle: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is required")]
    Missing { name: &'static str },
    #[error("{name}: {problem}")]
    Invalid { name: &'static str, problem: String },
}

impl Config {
    /// Build from a variable lookup (the process environment in `main`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let number = |name: &'static str,
                      default: u64,
                      range: std::ops::RangeInclusive<u64>,
                      unit: &str|
         -> Result<u64, ConfigError> {
            match var(name) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| ConfigError::Invalid {
                        name,
                        problem: format!(
                            "must be a whole number of {unit} in {}..={}",
                            range.start(),
                            range.end()
                        ),
                    }),
            }
        };
        let secs = |name: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| {
            number(name, default, range, "seconds").map(Duration::from_secs)
        };
        let list = |name: &str| -> Vec<String> {
            var(name)
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };

        let policy_prefix = var("TVM_POLICY_PREFIX").unwrap_or_else(|| "/tvm/policies/".into());
        // "/" would read every top-level parameter of the account.
        if !policy_prefix.starts_with('/')
            || !policy_prefix.ends_with('/')
            || policy_prefix.len() < 3
        {
            return Err(ConfigError::Invalid {
                name: "TVM_POLICY_PREFIX",
                problem: "must be a path below the root that starts and ends with '/', such as /tvm/policies/".into(),
            });
        }
        let policy_signing_key = var("TVM_POLICY_SIGNING_KEY").filter(|k| !k.is_empty());
        if let Some(k) = &policy_signing_key {
            let ok = k.len() <= 2048
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_-:".contains(&b));
            if !ok {
                return Err(ConfigError::Invalid {
                    name: "TVM_POLICY_SIGNING_KEY",
                    problem: "must be a KMS key id, key ARN, alias/NAME or alias ARN".into(),
                });
            }
        }
        let modes = list("TVM_IDENTITY_MODES");
        let identity_modes = if modes.is_empty() {
            IdentityModes {
                apigw: true,
                sts: false,
                jwt: false,
            }
        } else {
            let mut m = IdentityModes {
                apigw: false,
                sts: false,
                jwt: false,
            };
            for mode in &modes {
                match mode.as_str() {
                    "apigw" => m.apigw = true,
                    "sts" => m.sts = true,
                    "jwt" => m.jwt = true,
                    other => {
                        return Err(ConfigError::Invalid {
                            name: "TVM_IDENTITY_MODES",
                            problem: format!("unknown mode {other:?}; use apigw, sts, jwt or several, comma-separated"),
                        })
                    }
                }
            }
            m
        };
        let server_id = var("TVM_SERVER_ID");
        if identity_modes.sts && server_id.as_deref().is_none_or(|s| s.len() < 8) {
            return Err(ConfigError::Invalid {
                name: "TVM_SERVER_ID",
                problem: "sts identity mode needs a server id of at least 8 characters".into(),
            });
        }
        let allowed_accounts = list("TVM_ALLOWED_ACCOUNTS");
        if let Some(bad) = allowed_accounts.iter().find(|a| !account_id(a)) {
            return Err(ConfigError::Invalid {
                name: "TVM_ALLOWED_ACCOUNTS",
                problem: format!("{bad:?} is not a 12-digit account id"),
            });
        }
        // A presigned GetCallerIdentity is valid from any AWS account in the
        // world: the sts mode serves none unless they are named.
        if identity_modes.sts && allowed_accounts.is_empty() {
            return Err(ConfigError::Invalid {
                name: "TVM_ALLOWED_ACCOUNTS",
                problem: "the sts identity mode accepts callers from any AWS account: list the accounts it serves (comma-separated 12-digit ids)".into(),
            });
        }
        let jwt_issuers = list("TVM_JWT_ISSUERS");
        for issuer in &jwt_issuers {
            tvm_core::oidc::valid_issuer(issuer).map_err(|e| ConfigError::Invalid {
                name: "TVM_JWT_ISSUERS",
                problem: format!("{issuer:?} {e}"),
            })?;
        }
        let jwt_audiences = list("TVM_JWT_AUDIENCES");
        if let Some(bad) = jwt_audiences
            .iter()
            .find(|a| a.len() > 256 || !a.bytes().all(|b| (0x21..=0x7e).contains(&b)))
        {
            return Err(ConfigError::Invalid {
                name: "TVM_JWT_AUDIENCES",
                problem: format!("{bad:?} is not 1-256 printable characters"),
            });
        }
        if identity_modes.jwt && jwt_issuers.is_empty() {
            return Err(ConfigError::Invalid {
                name: "TVM_JWT_ISSUERS",
                problem: "the jwt identity mode needs the issuers it trusts (comma-separated https:// URLs, exactly as their tokens' iss)".into(),
            });
        }
        // One issuer signs tokens for every application it serves: without
        // an audience, a token minted for any of them would be a caller here.
        if identity_modes.jwt && jwt_audiences.is_empty() {
            return Err(ConfigError::Invalid {
                name: "TVM_JWT_AUDIENCES",
                problem: "the jwt identity mode needs the audiences its tokens must be for (your client ids): an issuer's tokens for other applications would be callers otherwise".into(),
            });
        }
        let revocation_accounts = list("TVM_REVOCATION_ACCOUNTS");
        if let Some(bad) = revocation_accounts.iter().find(|a| !account_id(a)) {
            return Err(ConfigError::Invalid {
                name: "TVM_REVOCATION_ACCOUNTS",
                problem: format!("{bad:?} is not a 12-digit account id"),
            });
        }
        let iam_path = |name: &'static str, default: &str| -> Result<String, ConfigError> {
            let v = var(name).unwrap_or_else(|| default.into());
            let (path, leaf) = v.rsplit_once('/').unwrap_or(("", ""));
            let ok = v.starts_with('/')
                && !leaf.is_empty()
                && leaf.len() <= 64
                && v.len() <= 512
                && path
                    .bytes()
                    .chain(leaf.bytes())
                    .all(|b| b.is_ascii_alphanumeric() || b"/+=,.@_-".contains(&b));
            if ok {
                Ok(v)
            } else {
                Err(ConfigError::Invalid {
                    name,
                    problem: "must be an IAM path and name, such as /tvm/tvm-revoker".into(),
                })
            }
        };
        let revoker_role = iam_path("TVM_REVOKER_ROLE", "/tvm/tvm-revoker")?;
        let revocation_policy = iam_path("TVM_REVOCATION_POLICY", "/tvm/tvm-revocations")?;
        let allowed_org_ids = list("TVM_ALLOWED_ORG_IDS");
        if let Some(bad) = allowed_org_ids
            .iter()
            .find(|o| !tvm_core::principal::valid_org_id(o))
        {
            return Err(ConfigError::Invalid {
                name: "TVM_ALLOWED_ORG_IDS",
                problem: format!("{bad:?} is not an organization id"),
            });
        }
        let cors_origins = list("TVM_CORS_ORIGINS");
        if let Some(bad) = cors_origins.iter().find(|o| !valid_origin(o)) {
            return Err(ConfigError::Invalid {
                name: "TVM_CORS_ORIGINS",
                problem: format!("{bad:?} is not an exact origin: https://host[:port] (http:// only to 127.0.0.1 or localhost), lower case, no path, no wildcard"),
            });
        }
        let region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION"));
        let partition = match region.as_deref() {
            Some(r) if r.starts_with("cn-") => "aws-cn",
            Some(r) if r.starts_with("us-gov-") => "aws-us-gov",
            Some(r) if r.starts_with("us-iso-") => "aws-iso",
            Some(r) if r.starts_with("us-isob-") => "aws-iso-b",
            _ => "aws",
        }
        .to_string();
        // The same precedence the SDK applies to its own STS client.
        let sts_endpoint = match var("AWS_ENDPOINT_URL_STS").or_else(|| var("AWS_ENDPOINT_URL")) {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => match region {
                Some(r) if r.starts_with("cn-") => format!("https://sts.{r}.amazonaws.com.cn"),
                Some(r) => format!("https://sts.{r}.amazonaws.com"),
                None if identity_modes.sts => {
                    return Err(ConfigError::Missing { name: "AWS_REGION" })
                }
                None => String::new(),
            },
        };
        let policy_ttl = secs("TVM_POLICY_TTL_SECONDS", 30, 1..=3600)?;
        let rate_limit = match var("TVM_RATE_LIMIT") {
            None => RateLimit {
                requests: 60,
                per_seconds: 60,
            },
            Some(v) => v.parse().map_err(|problem| ConfigError::Invalid {
                name: "TVM_RATE_LIMIT",
                problem,
            })?,
        };
        let admin_patterns = list("TVM_ADMIN_PRINCIPALS");
        if let Some(bad) = admin_patterns.iter().find(|g| !pins_account(g)) {
            return Err(ConfigError::Invalid {
                name: "TVM_ADMIN_PRINCIPALS",
                problem: format!("{bad:?} {UNPINNED}"),
            });
        }
        let admins = admin_patterns
            .iter()
            .map(|g| Glob::parse(g))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ConfigError::Invalid {
                name: "TVM_ADMIN_PRINCIPALS",
                problem: format!("a pattern {e}"),
            })?;
        Ok(Self {
            policy_prefix,
            policy_ttl,
            policy_max_stale: secs(
                "TVM_POLICY_MAX_STALE_SECONDS",
                300.max(policy_ttl.as_secs() * 2),
                2..=86_400,
            )?,
            sessions_table: var("TVM_SESSIONS_TABLE").ok_or(ConfigError::Missing {
                name: "TVM_SESSIONS_TABLE",
            })?,
            approvals_table: var("TVM_APPROVALS_TABLE").unwrap_or_else(|| "tvm-approvals".into()),
            break_glass_table: var("TVM_BREAKGLASS_TABLE")
                .unwrap_or_else(|| "tvm-breakglass".into()),
            identity_modes,
            server_id,
            allowed_accounts,
            allowed_org_ids,
            sts_endpoint,
            aws_timeout: Duration::from_millis(number(
                "TVM_AWS_TIMEOUT_MS",
                3_000,
                100..=30_000,
                "milliseconds",
            )?),
            session_retention: Duration::from_secs(30 * 86_400),
            rate_limit,
            admins,
            notify_topic_arn: var("TVM_NOTIFY_TOPIC_ARN"),
            partition,
            revoker_role,
            revocation_policy,
            revocation_accounts,
            service: var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| "tvm".into()),
            cors_origins,
            jwt_issuers,
            jwt_audiences,
            jwks_max_age: secs("TVM_JWKS_MAX_AGE_SECONDS", 3600, 2..=86_400)?,
            policy_signing_key,
            ca_bundle: var("TVM_CA_BUNDLE").map(|v| std::path::PathBuf::from(v.trim())),
        })
    }
}

/// Is `origin` one a setting may list: `https://host[:port]`, lower case,
/// or `http://` to 127.0.0.1 or localhost for local pages (a page served
/// over plain http elsewhere could be rewritten on the way and read what it
/// vends).
pub fn valid_origin(origin: &str) -> bool {
    let (rest, plain) = match origin.strip_prefix("https://") {
        Some(r) => (r, false),
        None => match origin.strip_prefix("http://") {
            Some(r) => (r, true),
            None => return false,
        },
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    if plain && !matches!(host, "127.0.0.1" | "localhost") {
        return false;
    }
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    host_ok && port_ok
}

fn account_id(a: &str) -> bool {
    a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit())
}

impl Config {
    /// The revoker role tvm assumes to write an account's revocation policy.
    pub fn revoker_arn(&self, account: &str) -> String {
        format!(
            "arn:{}:iam::{account}:role{}",
            self.partition, self.revoker_role
        )
    }

    /// The revocation policy of an account.
    pub fn revocation_policy_arn(&self, account: &str) -> String {
        format!(
            "arn:{}:iam::{account}:policy{}",
            self.partition, self.revocation_policy
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| env.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_brief() {
        let c = cfg(&[("TVM_SESSIONS_TABLE", "s"), ("AWS_REGION", "eu-west-1")]).unwrap();
        assert_eq!(c.policy_prefix, "/tvm/policies/");
        assert_eq!(c.policy_ttl, Duration::from_secs(30));
        assert_eq!(
            c.identity_modes,
            IdentityModes {
                apigw: true,
                sts: false,
                jwt: false
            }
        );
        assert_eq!(c.sts_endpoint, "https://sts.eu-west-1.amazonaws.com");
    }

    #[test]
    fn sts_mode_needs_a_server_id_and_the_endpoint_follows_the_sdk_variables() {
        assert!(cfg(&[
            ("TVM_SESSIONS_TABLE", "s"),
            ("TVM_IDENTITY_MODES", "apigw,sts"),
            ("AWS_REGION", "us-east-1")
        ])
        .is_err());
        let c = cfg(&[
            ("TVM_SESSIONS_TABLE", "s"),
            ("TVM_IDENTITY_MODES", "sts"),
            ("TVM_SERVER_ID", "tvm-local-1"),
            ("TVM_ALLOWED_ACCOUNTS", "123456789012"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/"),
        ])
        .unwrap();
        assert_eq!(c.sts_endpoint, "http://127.0.0.1:5000");
        assert!(c.identity_modes.sts && !c.identity_modes.apigw);
    }

    #[test]
    fn sts_mode_serves_only_named_accounts_and_admins_pin_theirs() {
        let base = [
            ("TVM_SESSIONS_TABLE", "s"),
            ("TVM_IDENTITY_MODES", "apigw,sts"),
            ("TVM_SERVER_ID", "tvm-local-1"),
            ("AWS_REGION", "us-east-1"),
        ];
        let e = cfg(&base).unwrap_err();
        assert!(e.to_string().starts_with("TVM_ALLOWED_ACCOUNTS"), "{e}");
        for admin in [
            "arn:aws:sts::*:assumed-role/Security/*",
            "*",
            "arn:aws:iam::12345678901?:user/a",
        ] {
            let e =
                cfg(&[("TVM_SESSIONS_TABLE", "s"), ("TVM_ADMIN_PRINCIPALS", admin)]).unwrap_err();
            assert!(
                e.to_string().starts_with("TVM_ADMIN_PRINCIPALS"),
                "{admin}: {e}"
            );
        }
        assert!(cfg(&[
            ("TVM_SESSIONS_TABLE", "s"),
            (
                "TVM_ADMIN_PRINCIPALS",
                "arn:aws:sts::123456789012:assumed-role/Security/*"
            ),
        ])
        .is_ok());
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        let e = cfg(&[
            ("TVM_SESSIONS_TABLE", "s"),
            ("TVM_IDENTITY_MODES", "header"),
        ])
        .unwrap_err();
        assert!(e.to_string().starts_with("TVM_IDENTITY_MODES"));
        let e = cfg(&[("TVM_SESSIONS_TABLE", "s"), ("TVM_ALLOWED_ACCOUNTS", "123")]).unwrap_err();
        assert!(e.to_string().starts_with("TVM_ALLOWED_ACCOUNTS"));
        // A number out of range is refused, not replaced by the default.
        for (name, value) in [
            ("TVM_AWS_TIMEOUT_MS", "50"),
            ("TVM_AWS_TIMEOUT_MS", "3s"),
            ("TVM_POLICY_TTL_SECONDS", "0"),
            ("TVM_POLICY_MAX_STALE_SECONDS", "100000"),
            ("TVM_RATE_LIMIT", "60"),
            ("TVM_POLICY_PREFIX", "/"),
            ("TVM_CORS_ORIGINS", "*"),
            ("TVM_CORS_ORIGINS", "https://app.example.com/"),
            ("TVM_JWT_ISSUERS", "http://id.example.com"),
            ("TVM_JWT_ISSUERS", "https://id.example.com?x=1"),
            ("TVM_JWT_AUDIENCES", "a b"),
        ] {
            let e = cfg(&[("TVM_SESSIONS_TABLE", "s"), (name, value)]).unwrap_err();
            assert!(e.to_string().starts_with(name), "{name}={value}: {e}");
        }
        // The jwt mode trusts named issuers, for named audiences only.
        let jwt = |extra: &[(&'static str, &'static str)]| {
            let mut vars = vec![
                ("TVM_SESSIONS_TABLE", "s"),
                ("TVM_IDENTITY_MODES", "apigw,jwt"),
            ];
            vars.extend_from_slice(extra);
            cfg(&vars)
                .map(|c| c.identity_modes.jwt)
                .map_err(|e| e.to_string())
        };
        assert!(jwt(&[]).unwrap_err().starts_with("TVM_JWT_ISSUERS"));
        assert!(jwt(&[("TVM_JWT_ISSUERS", "https://id.example.com")])
            .unwrap_err()
            .starts_with("TVM_JWT_AUDIENCES"));
        assert_eq!(
            jwt(&[
                ("TVM_JWT_ISSUERS", "https://id.example.com"),
                ("TVM_JWT_AUDIENCES", "app")
            ]),
            Ok(true)
        );
        assert_eq!(
            cfg(&[]).unwrap_err(),
            ConfigError::Missing {
                name: "TVM_SESSIONS_TABLE"
            }
        );
    }

    #[test]
    fn only_exact_origins_are_settings() {
        for ok in [
            "https://app.example.com",
            "http://127.0.0.1:8080",
            "http://localhost:3000",
            "https://a-b.example",
        ] {
            assert!(valid_origin(ok), "{ok}");
        }
        for bad in [
            "*",
            "https://*.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://App.Example.com",
            "app.example.com",
            "ftp://app.example.com",
            "https://",
            "https://app.example.com:0",
            "https://app.example.com:99999",
            "null",
            "http://app.example.com",
            "http://10.0.0.1:8080",
            "http://localhost.example.com",
        ] {
            assert!(!valid_origin(bad), "{bad}");
        }
    }
}
