//! Callers as parsed principals.
//!
//! A caller arrives as an ARN (from API Gateway's IAM context or from STS
//! GetCallerIdentity). We parse it strictly: anything that is not an ARN
//! IAM or STS could have produced is refused, so that policy matching never
//! sees a newline, a NUL, a path traversal or a lookalike character.

use std::fmt;

use serde::Serialize;

use crate::glob::Glob;

/// The AWS partitions tvm serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Partition {
    Aws,
    AwsCn,
    AwsUsGov,
}

impl Partition {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "aws" => Some(Self::Aws),
            "aws-cn" => Some(Self::AwsCn),
            "aws-us-gov" => Some(Self::AwsUsGov),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aws => "aws",
            Self::AwsCn => "aws-cn",
            Self::AwsUsGov => "aws-us-gov",
        }
    }
}

/// What kind of principal signed the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum PrincipalKind {
    User,
    AssumedRole,
    FederatedUser,
    Root,
    /// A caller with an OpenID Connect token, not AWS credentials (see
    /// [`crate::oidc`]).
    Oidc,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::AssumedRole => "assumed-role",
            Self::FederatedUser => "federated-user",
            Self::Root => "root",
            Self::Oidc => "oidc",
        }
    }
}

/// A caller, parsed from its ARN (or, kind `oidc`, from a verified token).
/// Every field is validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// The caller's ARN; for an oidc caller its id, `oidc:ISSUER#SUBJECT`
    /// (an issuer has no fragment, so the first `#` ends it).
    pub arn: String,
    pub partition: Partition,
    /// The caller's account; empty for an oidc caller.
    pub account: String,
    pub kind: PrincipalKind,
    /// Role name (assumed-role), user name (user, federated-user), subject
    /// (oidc); empty for root.
    pub name: String,
    /// IAM path of a user or role, `/` when none.
    pub path: String,
    /// Session name chosen by whoever assumed the role; `None` unless assumed-role.
    pub session_name: Option<String>,
    /// AWS Organizations id, when the front end supplied one.
    pub org_id: Option<String>,
    /// Issuer, subject and claims of an oidc caller.
    pub oidc: Option<Box<crate::oidc::Oidc>>,
    /// The ARN without its IAM path, when it has one (computed once: every
    /// rule of a profile matches against it).
    #[serde(skip)]
    unpathed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalError {
    #[error("the caller ARN is empty")]
    Empty,
    #[error("the caller ARN is longer than 2048 characters")]
    TooLong,
    #[error("the caller ARN has a character outside the ARN alphabet")]
    BadCharacter,
    #[error("the caller ARN is not of the form arn:PARTITION:SERVICE::ACCOUNT:RESOURCE")]
    Shape,
    #[error("unknown partition {0:?}")]
    Partition(String),
    #[error("the account id must be 12 digits")]
    Account,
    #[error("the resource {0:?} is not a user, assumed role, federated user or root")]
    Resource(String),
    #[error("a name in the caller ARN is empty, too long or uses characters IAM does not allow")]
    Name,
    #[error("the organization id is not of the form o-xxxxxxxxxx")]
    OrgId,
}

/// Characters IAM allows in user, role and session names: `[\w+=,.@-]`.
pub fn is_iam_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

fn valid_name(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.chars().all(is_iam_name_char)
}

fn valid_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `o-` followed by 10 to 32 lowercase letters or digits.
pub fn valid_org_id(s: &str) -> bool {
    s.strip_prefix("o-").is_some_and(|rest| {
        (10..=32).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

impl Principal {
    /// Parse a caller ARN. `org_id` is what the front end reported, if anything.
    pub fn parse(arn: &str, org_id: Option<&str>) -> Result<Self, PrincipalError> {
        if arn.is_empty() {
            return Err(PrincipalError::Empty);
        }
        if arn.len() > 2048 {
            return Err(PrincipalError::TooLong);
        }
        if !arn
            .chars()
            .all(|c| is_iam_name_char(c) || c == ':' || c == '/')
        {
            return Err(PrincipalError::BadCharacter);
        }
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, resource] = parts[..] else {
            return Err(PrincipalError::Shape);
        };
        if prefix != "arn" || !region.is_empty() {
            return Err(PrincipalError::Shape);
        }
        let partition = Partition::parse(partition)
            .ok_or_else(|| PrincipalError::Partition(partition.into()))?;
        if !valid_account(account) {
            return Err(PrincipalError::Account);
        }
        let org_id = match org_id.filter(|o| !o.is_empty()) {
            Some(o) if valid_org_id(o) => Some(o.to_string()),
            Some(_) => return Err(PrincipalError::OrgId),
            None => None,
        };
        let segments: Vec<&str> = resource.split('/').collect();
        let bad_resource = || PrincipalError::Resource(resource.chars().take(64).collect());
        let (kind, name, path, session_name) = match (service, segments.as_slice()) {
            ("iam", ["root"]) => (PrincipalKind::Root, String::new(), "/".to_string(), None),
            ("iam", ["user", rest @ .., name]) => (
                PrincipalKind::User,
                name.to_string(),
                join_path(rest)?,
                None,
            ),
            ("sts", ["assumed-role", rest @ .., role, session]) => {
                if !valid_name(session, 2, 64) {
                    return Err(PrincipalError::Name);
                }
                (
                    PrincipalKind::AssumedRole,
                    role.to_string(),
                    join_path(rest)?,
                    Some(session.to_string()),
                )
            }
            ("sts", ["federated-user", name]) => (
                PrincipalKind::FederatedUser,
                name.to_string(),
                "/".to_string(),
                None,
            ),
            _ => return Err(bad_resource()),
        };
        if kind != PrincipalKind::Root && !valid_name(&name, 1, 64) {
            return Err(PrincipalError::Name);
        }
        let mut p = Self {
            arn: arn.to_string(),
            partition,
            account: account.to_string(),
            kind,
            name,
            path,
            session_name,
            org_id,
            oidc: None,
            unpathed: None,
        };
        p.unpathed = p.without_path();
        Ok(p)
    }

    /// An oidc caller, its issuer, subject and claims checked (see
    /// [`crate::oidc::caller`]).
    fn from_oidc(o: crate::oidc::Oidc) -> Self {
        Self {
            arn: crate::oidc::caller_id(&o.issuer, &o.subject),
            partition: Partition::Aws,
            account: String::new(),
            kind: PrincipalKind::Oidc,
            name: o.subject.clone(),
            path: "/".into(),
            session_name: None,
            org_id: None,
            oidc: Some(Box::new(o)),
            unpathed: None,
        }
    }

    /// The issuer of an oidc caller.
    pub fn issuer(&self) -> Option<&str> {
        self.oidc.as_deref().map(|o| o.issuer.as_str())
    }

    /// The principal a rate limit, a revocation or "self" applies to: never
    /// a name the caller chose.
    ///
    /// - an assumed role: the role (`arn:P:iam::A:role/NAME`), whatever the
    ///   session name;
    /// - an IAM user: the user without its path (`user/alice` and
    ///   `user/ops/alice` are one user: names are unique per account);
    /// - a federated user: every federated user of the account at once
    ///   (`arn:P:sts::A:federated-user/*`): GetFederationToken lets its caller
    ///   choose the name, so the name identifies nobody;
    /// - root: the account's root;
    /// - an oidc caller: its issuer and subject (`oidc:ISSUER#SUBJECT`).
    ///
    /// Role and user names are lowercased: IAM keeps them unique without
    /// case, so `role/Orders` and `role/orders` are one role.
    pub fn stable_id(&self) -> String {
        if self.kind == PrincipalKind::Oidc {
            // Issuer and subject, exactly: OIDC says both are case-sensitive.
            return self.arn.clone();
        }
        let (p, a) = (self.partition.as_str(), &self.account);
        let name = self.name.to_ascii_lowercase();
        match self.kind {
            PrincipalKind::AssumedRole => format!("arn:{p}:iam::{a}:role/{name}"),
            PrincipalKind::User => format!("arn:{p}:iam::{a}:user/{name}"),
            PrincipalKind::FederatedUser => format!("arn:{p}:sts::{a}:federated-user/*"),
            PrincipalKind::Root | PrincipalKind::Oidc => self.arn.clone(),
        }
    }

    /// The caller's ARN without an IAM path: the form a policy author is
    /// likely to write. Rules match either form; both name one principal.
    #[inline]
    pub fn unpathed_arn(&self) -> Option<&str> {
        self.unpathed.as_deref()
    }

    fn without_path(&self) -> Option<String> {
        if self.path == "/" {
            return None;
        }
        let (p, a) = (self.partition.as_str(), &self.account);
        match (self.kind, &self.session_name) {
            (PrincipalKind::User, _) => Some(format!("arn:{p}:iam::{a}:user/{}", self.name)),
            (PrincipalKind::AssumedRole, Some(session)) => Some(format!(
                "arn:{p}:sts::{a}:assumed-role/{}/{session}",
                self.name
            )),
            _ => None,
        }
    }

    /// Does an ARN pattern match this caller, as AWS wrote its ARN or
    /// without its IAM path?
    pub fn matched_by(&self, pattern: &Glob) -> bool {
        pattern.matches(&self.arn) || self.unpathed_arn().is_some_and(|u| pattern.matches(u))
    }

    /// Who the caller is as a person, for "the requester cannot approve" and
    /// "quorum counts distinct persons": the session name of an assumed role
    /// (what AWS SSO sets to the user's name) or the user name, without case
    /// and without an `@domain`, across roles and accounts, so that one
    /// person under two permission sets is one person. Federated users are one person per
    /// account (they choose their names); root is its account's.
    pub fn person(&self) -> String {
        // `alice@example.com` (an SSO session) and `alice` (an IAM user) are
        // taken for one person: a wrong guess refuses, never admits.
        let local = |name: &str| {
            let lower = name.to_ascii_lowercase();
            lower.split('@').next().unwrap_or_default().to_string()
        };
        match (self.kind, &self.session_name) {
            (PrincipalKind::AssumedRole, Some(session)) => local(session),
            (PrincipalKind::User, _) | (PrincipalKind::Oidc, _) => local(&self.name),
            (PrincipalKind::FederatedUser, _) => format!("federated-user/*@{}", self.account),
            _ => format!("root@{}", self.account),
        }
    }

    /// Every person an oidc caller may also be under an AWS identity: its
    /// subject's, and its `email`, `preferred_username` and `upn` claims'
    /// (see [`Principal::person`]). Stored with its approval requests, so that
    /// its own SSO session cannot approve them. Empty for other kinds (their
    /// person is read from their ARN).
    pub fn persons(&self) -> Vec<String> {
        let Some(o) = &self.oidc else {
            return vec![];
        };
        let mut out: Vec<String> = vec![self.person()];
        out.retain(|p| !p.is_empty());
        for claim in ["email", "preferred_username", "upn"] {
            if let Some(v) = o.claims.scalar(claim) {
                let lower = v.to_ascii_lowercase();
                let local = lower.split('@').next().unwrap_or_default().to_string();
                if !local.is_empty() && !out.contains(&local) {
                    out.push(local);
                }
            }
        }
        out
    }

    pub fn role_name(&self) -> Option<&str> {
        (self.kind == PrincipalKind::AssumedRole).then_some(self.name.as_str())
    }

    pub fn user_name(&self) -> Option<&str> {
        matches!(
            self.kind,
            PrincipalKind::User | PrincipalKind::FederatedUser
        )
        .then_some(self.name.as_str())
    }
}

/// `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn(String);

impl RoleArn {
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        let ok = match parts[..] {
            ["arn", partition, "iam", "", account, resource] => {
                Partition::parse(partition).is_some()
                    && account.len() == 12
                    && account.bytes().all(|b| b.is_ascii_digit())
                    && resource.strip_prefix("role/").is_some_and(|r| {
                        !r.is_empty()
                            && r.split('/').all(|seg| {
                                (1..=64).contains(&seg.len()) && seg.chars().all(is_iam_name_char)
                            })
                    })
            }
            _ => false,
        };
        if ok && s.len() <= 2048 {
            Ok(Self(s.to_string()))
        } else {
            Err("must be an IAM role ARN, arn:aws:iam::ACCOUNT:role/NAME".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn account(&self) -> &str {
        self.0.split(':').nth(4).unwrap_or_default()
    }

    /// The role's name, without its path.
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or_default()
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The principal a revocation or a listing is about, from a caller ARN, a
/// user ARN, a role ARN or an oidc caller id: the role or user (paths
/// dropped, as STS drops them from assumed-role ARNs), every federated user
/// of the account, or the oidc caller.
/// `None` for anything else.
pub fn stable_principal(arn: &str) -> Option<String> {
    if arn.starts_with(crate::oidc::ID_PREFIX) {
        return crate::oidc::parse_caller_id(arn).map(|_| arn.to_string());
    }
    if let Ok(p) = Principal::parse(arn, None) {
        return Some(p.stable_id());
    }
    let role = RoleArn::parse(arn).ok()?;
    let s = role.as_str();
    let (head, path) = s.split_once(":role/")?;
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    Some(format!("{head}:role/{name}"))
}

/// Does an ARN pattern name one account? Its first five fields (`arn`,
/// partition, service, region, account) are literal and the account is 12
/// digits. Only then can a wildcard in the rest not reach another account.
pub fn pins_account(pattern: &str) -> bool {
    let fields: Vec<&str> = pattern.splitn(6, ':').collect();
    fields.len() == 6
        && fields[..5].iter().all(|f| !f.contains(['*', '?']))
        && fields[0] == "arn"
        && fields[4].len() == 12
        && fields[4].bytes().all(|b| b.is_ascii_digit())
}

fn join_path(segments: &[&str]) -> Result<String, PrincipalError> {
    if segments.iter().any(|s| !valid_name(s, 1, 64)) {
        return Err(PrincipalError::Name);
    }
    if segments.is_empty() {
        Ok("/".to_string())
    } else {
        Ok(format!("/{}/", segments.join("/")))
    }
}

impl From<crate::oidc::Oidc> for Principal {
    fn from(o: crate::oidc::Oidc) -> Self {
        Self::from_oidc(o)
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_assumed_role_with_its_session() {
        let p = Principal::parse(
            "arn:aws:sts::111122223333:assumed-role/orders-task/acme",
            Some("o-abcdefghij"),
        )
        .unwrap();
        assert_eq!(p.kind, PrincipalKind::AssumedRole);
        assert_eq!(p.account, "111122223333");
        assert_eq!(p.name, "orders-task");
        assert_eq!(p.session_name.as_deref(), Some("acme"));
        assert_eq!(p.org_id.as_deref(), Some("o-abcdefghij"));
        assert_eq!(p.stable_id(), "arn:aws:iam::111122223333:role/orders-task");
        assert_eq!(p.person(), "acme");
    }

    #[test]
    fn a_user_is_one_principal_with_or_without_its_path() {
        let pathed = Principal::parse("arn:aws:iam::111122223333:user/ops/Alice", None).unwrap();
        let plain = Principal::parse("arn:aws:iam::111122223333:user/Alice", None).unwrap();
        assert_eq!(pathed.stable_id(), plain.stable_id());
        assert_eq!(
            pathed.unpathed_arn(),
            Some("arn:aws:iam::111122223333:user/Alice")
        );
        assert_eq!(plain.unpathed_arn(), None);
        assert_eq!(
            stable_principal("arn:aws:iam::111122223333:user/ops/Alice"),
            stable_principal("arn:aws:iam::111122223333:user/Alice")
        );
        // Names are unique without case: one spelling per principal.
        assert_eq!(
            stable_principal("arn:aws:iam::111122223333:user/alice").as_deref(),
            Some("arn:aws:iam::111122223333:user/alice")
        );
        assert_eq!(
            stable_principal("arn:aws:iam::111122223333:role/tvm/Orders-Task"),
            Principal::parse(
                "arn:aws:sts::111122223333:assumed-role/orders-task/s1",
                None
            )
            .map(|p| p.stable_id())
            .ok()
        );
        // One person: the user, and the same name as a role session elsewhere.
        let session =
            Principal::parse("arn:aws:sts::444455556666:assumed-role/Admin/alice", None).unwrap();
        assert_eq!(pathed.person(), session.person());
    }

    #[test]
    fn a_federated_user_is_never_its_chosen_name() {
        let a =
            Principal::parse("arn:aws:sts::111122223333:federated-user/analyst-x", None).unwrap();
        let b = Principal::parse("arn:aws:sts::111122223333:federated-user/other", None).unwrap();
        assert_eq!(a.stable_id(), "arn:aws:sts::111122223333:federated-user/*");
        assert_eq!((a.stable_id(), a.person()), (b.stable_id(), b.person()));
        assert_eq!(
            stable_principal("arn:aws:sts::111122223333:federated-user/analyst-x").as_deref(),
            Some("arn:aws:sts::111122223333:federated-user/*")
        );
    }

    #[test]
    fn only_a_pattern_with_a_literal_account_pins_it() {
        for p in [
            "arn:aws:sts::111122223333:assumed-role/orders-task/*",
            "arn:aws:iam::111122223333:user/*",
            "arn:aws:iam::111122223333:root",
        ] {
            assert!(pins_account(p), "{p}");
        }
        for p in [
            "*",
            "arn:aws:sts::*:assumed-role/orders-task/*",
            "arn:aws:sts::1111222233?3:assumed-role/x/*",
            "arn:aws:sts::11112222333*:assumed-role/x/*",
            "arn:*:111122223333:*",
            "arn:aws:*::111122223333:user/a",
            "arn:aws:sts::*",
            "arn:aws:sts::111122223333",
        ] {
            assert!(!pins_account(p), "{p}");
        }
    }

    #[test]
    fn parses_an_assumed_role_with_a_path() {
        let p = Principal::parse(
            "arn:aws:sts::111122223333:assumed-role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Dev_1234/jane@example.com",
            None,
        )
        .unwrap();
        assert_eq!(p.name, "AWSReservedSSO_Dev_1234");
        assert_eq!(p.path, "/aws-reserved/sso.amazonaws.com/");
        assert_eq!(p.session_name.as_deref(), Some("jane@example.com"));
    }

    #[test]
    fn parses_users_federated_users_and_root_in_every_partition() {
        let u = Principal::parse("arn:aws-cn:iam::111122223333:user/ops/alice", None).unwrap();
        assert_eq!(
            (u.kind, u.name.as_str(), u.path.as_str()),
            (PrincipalKind::User, "alice", "/ops/")
        );
        assert_eq!(u.partition, Partition::AwsCn);
        let f =
            Principal::parse("arn:aws-us-gov:sts::111122223333:federated-user/bob", None).unwrap();
        assert_eq!(
            (f.kind, f.partition),
            (PrincipalKind::FederatedUser, Partition::AwsUsGov)
        );
        let r = Principal::parse("arn:aws:iam::111122223333:root", None).unwrap();
        assert_eq!(r.kind, PrincipalKind::Root);
        assert_eq!(r.role_name(), None);
    }

    #[test]
    fn refuses_anything_iam_could_not_have_produced() {
        for arn in [
            "",
            "arn:aws:sts::111122223333:assumed-role/r/s\n",
            "arn:aws:sts::111122223333:assumed-role/r/s\0x",
            "arn:aws:sts::111122223333:assumed-role/../s",
            "arn:aws:sts::111122223333:assumed-role/r/../x",
            "arn:aws:sts::111122223333:assumed-role/оrders/s", // Cyrillic o
            "arn:aws-iso:sts::111122223333:assumed-role/r/s",
            "arn:aws:sts::11112222333:assumed-role/r/s",
            "arn:aws:sts:eu-west-1:111122223333:assumed-role/r/s",
            "arn:aws:sts::111122223333:assumed-role/r",
            "arn:aws:sts::111122223333:assumed-role/r/s/",
            "arn:aws:iam::111122223333:role/r",
            "arn:aws:sts::111122223333:user/u",
            "arn:aws:s3:::bucket",
            "not-an-arn",
        ] {
            assert!(Principal::parse(arn, None).is_err(), "{arn:?} was accepted");
        }
        assert_eq!(
            Principal::parse("arn:aws:iam::111122223333:root", Some("org")),
            Err(PrincipalError::OrgId)
        );
    }
}
