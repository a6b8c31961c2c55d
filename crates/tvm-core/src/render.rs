//! Rendering a profile for one caller: the inline session policy, the session
//! tags, the SourceIdentity and the RoleSessionName. The session policy's
//! output is re-parsed before it is used (defence in depth; see
//! `policy::session_policy`).

use serde_json::Value;

use crate::limits::{
    MAX_SESSION_POLICY_CHARS, MAX_STS_NAME, MAX_TAGS, MAX_TAG_VALUE, MIN_STS_NAME,
};
use crate::oidc::ClaimValue;
use crate::policy::Profile;
use crate::principal::{is_iam_name_char, Principal};
use crate::template::{ValueError, Vars};

/// What AssumeRole receives for one vend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub policy: Option<String>,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("{0}")]
    Value(#[from] ValueError),
    #[error(
        "the rendered session policy is {0} characters; STS accepts at most {MAX_SESSION_POLICY_CHARS}"
    )]
    PolicyTooLarge(usize),
    #[error("the rendered session policy is not valid JSON")]
    NotJson,
    #[error("tag {0} renders longer than {MAX_TAG_VALUE} characters")]
    TagTooLong(String),
    #[error("more than {MAX_TAGS} session tags")]
    TooManyTags,
}

/// The variables a caller brings: `caller.*`.
pub fn caller_vars(caller: &Principal) -> Vars {
    let mut vars = Vars::new();
    let mut put = |name: &str, value: Option<&str>| {
        // A value outside the whitelist (an oidc claim with a quote, a
        // wildcard or `${`; an empty one) is not available to templates: a
        // rendering that uses it refuses the vend.
        if let Some(v) = value {
            let _ = vars.insert(name, v);
        }
    };
    put("caller.kind", Some(caller.kind.as_str()));
    put("caller.name", Some(&caller.name));
    put("caller.role_name", caller.role_name());
    put("caller.user_name", caller.user_name());
    put("caller.session_name", caller.session_name.as_deref());
    put("caller.org_id", caller.org_id.as_deref());
    match caller.oidc.as_deref() {
        None => {
            put("caller.account", Some(&caller.account));
            put("caller.partition", Some(caller.partition.as_str()));
        }
        Some(o) => {
            put("caller.subject", Some(&o.subject));
            for (name, value) in o.claims.iter() {
                if let ClaimValue::One(v) = value {
                    put(&format!("claim.{name}"), Some(v));
                }
            }
            // The issuer is one TVM_JWT_ISSUERS lists, exactly: the
            // deployment's value, not the caller's, so `:` and `/` may
            // stand (quotes, wildcards and braces never pass `valid_issuer`).
            let _ = vars.insert_configured("caller.issuer", &o.issuer);
        }
    }
    vars
}

/// Render the session policy and tags of `profile` with `vars` (caller
/// variables plus the matching rule's binds).
pub fn render(profile: &Profile, vars: &Vars) -> Result<Rendered, RenderError> {
    let policy = match &profile.session_policy {
        None => None,
        Some(t) => {
            let text = t.render(vars)?;
            let chars = text.chars().count();
            if chars > MAX_SESSION_POLICY_CHARS {
                return Err(RenderError::PolicyTooLarge(chars));
            }
            // Defence in depth: what we send must be JSON.
            serde_json::from_str::<Value>(&text).map_err(|_| RenderError::NotJson)?;
            Some(text)
        }
    };
    if profile.session_tags.len() > MAX_TAGS {
        return Err(RenderError::TooManyTags);
    }
    let tags = profile
        .session_tags
        .iter()
        .map(|(k, t)| {
            let v = t.render(vars)?;
            if v.len() > MAX_TAG_VALUE {
                return Err(RenderError::TagTooLong(k.clone()));
            }
            Ok((k.clone(), v))
        })
        .collect::<Result<_, RenderError>>()?;
    Ok(Rendered { policy, tags })
}

/// Prefix of every SourceIdentity tvm stamps; protected roles require it.
pub const SOURCE_IDENTITY_PREFIX: &str = "tvm-";

/// `[\w+=,.@-]{2,64}`, as STS requires of SourceIdentity and RoleSessionName.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsName(String);

impl StsName {
    pub fn parse(s: &str) -> Option<Self> {
        ((MIN_STS_NAME..=MAX_STS_NAME).contains(&s.len()) && s.chars().all(is_iam_name_char))
            .then(|| Self(s.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// SourceIdentity carries the tvm session id, so CloudTrail leads back to
/// the decision. Session ids are 32 lowercase hex characters.
pub fn source_identity(session_id: &str) -> Option<StsName> {
    StsName::parse(&format!("{SOURCE_IDENTITY_PREFIX}{session_id}"))
}

/// RoleSessionName: who asked (session or user name), then a short session
/// id, so that two vends never share a name. Always within STS limits.
pub fn role_session_name(caller: &Principal, session_id: &str) -> StsName {
    let who: String = caller
        .session_name
        .as_deref()
        .unwrap_or(if caller.name.is_empty() {
            "root"
        } else {
            &caller.name
        })
        .chars()
        .filter(|&c| is_iam_name_char(c))
        .take(MAX_STS_NAME - 1 - SESSION_ID_LEN)
        .collect();
    let id: String = session_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(SESSION_ID_LEN)
        .collect();
    let name = format!("{who}.{id}");
    StsName::parse(&name).unwrap_or_else(|| StsName(format!("tvm.{id}")))
}

/// A session id: 32 lowercase hex characters.
pub const SESSION_ID_LEN: usize = 32;

/// The session id a session tvm vended carries at the end of its session
/// name (`role_session_name`). Only tvm names sessions of a profile's role
/// (the role trusts nothing else), so for a vended caller this is the vend
/// it came from.
pub fn vended_session_id(caller: &Principal) -> Option<&str> {
    session_id_in(caller.session_name.as_deref()?)
}

/// The session id a session name tvm gave ends in (`NAME.ID`).
pub fn session_id_in(role_session_name: &str) -> Option<&str> {
    let (_, id) = role_session_name.rsplit_once('.')?;
    (id.len() == SESSION_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse_profile;
    use crate::policy::session_policy::{PolicyTemplate, TemplateJsonError};

    fn profile(policy: &str) -> Profile {
        let doc = format!(
            "profile: p\nrole_arn: arn:aws:iam::111122223333:role/r\nsession_policy: '{policy}'\nsession_tags: {{tenant: '${{tenant}}'}}\nrules: [{{name: a, effect: allow, accounts: ['111122223333'], bind: {{tenant: '${{caller.session_name}}'}}}}]\n"
        );
        parse_profile(&doc, None).unwrap()
    }

    fn vars(tenant: &str) -> Vars {
        let mut v = Vars::new();
        v.insert("tenant", tenant).unwrap();
        v
    }

    #[test]
    fn renders_policy_and_tags_for_a_tenant() {
        let p = profile(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${tenant}/*"}]}"#,
        );
        let r = render(&p, &vars("acme")).unwrap();
        assert_eq!(
            r.policy.unwrap(),
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/acme/*"}]}"#
        );
        assert_eq!(r.tags, vec![("tenant".into(), "acme".into())]);
    }

    #[test]
    fn a_template_with_a_variable_outside_a_string_is_refused() {
        assert!(PolicyTemplate::parse(r#"{"Version":"2012-10-17","Statement":${s}}"#).is_err());
        assert!(matches!(
            PolicyTemplate::parse(r#"{"Version":"2012-10-17","Statement":[],"${k}":1}"#),
            Err(TemplateJsonError::VariableInKey(_))
        ));
        assert_eq!(PolicyTemplate::parse("[]"), Err(TemplateJsonError::Shape));
    }

    #[test]
    fn an_oversized_rendering_is_refused_with_its_size() {
        let resources: Vec<String> = (0..30)
            .map(|i| format!("\"arn:aws:s3:::bucket-{i}/${{tenant}}/*\""))
            .collect();
        let p = profile(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":[{}]}}]}}"#,
            resources.join(",")
        ));
        assert!(render(&p, &vars("a")).is_ok());
        let long = "a".repeat(60);
        assert!(
            matches!(render(&p, &vars(&long)), Err(RenderError::PolicyTooLarge(n)) if n > 2048)
        );
    }

    #[test]
    fn the_revocation_policy_knows_every_source_identity_tvm_stamps() {
        assert_eq!(
            crate::revocation::TVM_SOURCE_IDENTITIES,
            format!("{SOURCE_IDENTITY_PREFIX}*")
        );
    }

    #[test]
    fn sts_names_stay_within_limits() {
        let c = Principal::parse(
            &format!(
                "arn:aws:sts::111122223333:assumed-role/r/{}",
                "s".repeat(64)
            ),
            None,
        )
        .unwrap();
        let n = role_session_name(&c, "0123456789abcdef0123456789abcdef");
        assert_eq!(n.as_str().len(), 64);
        assert!(n.as_str().ends_with(".0123456789abcdef0123456789abcdef"));
        let root = Principal::parse("arn:aws:iam::111122223333:root", None).unwrap();
        assert_eq!(
            role_session_name(&root, "abcdef12xx").as_str(),
            "root.abcdef12xx"
        );
        // Only a whole session id at the end names a vend.
        let named = |s: &str| {
            Principal::parse(
                &format!("arn:aws:sts::111122223333:assumed-role/r/{s}"),
                None,
            )
            .unwrap()
        };
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(vended_session_id(&named(&format!("acme.{id}"))), Some(id));
        for other in [
            id.to_string(),
            format!("acme.{}", &id[1..]),
            format!("acme.{}", id.to_uppercase()),
        ] {
            assert_eq!(vended_session_id(&named(&other)), None, "{other}");
        }
        assert_eq!(
            source_identity("0123456789abcdef0123456789abcdef")
                .unwrap()
                .as_str(),
            "tvm-0123456789abcdef0123456789abcdef"
        );
    }
}
