//! `${name}` templates and the values that may fill them.
//!
//! A value is substituted only if every character is in a strict whitelist:
//! anything else (a quote, a backslash, a wildcard, `${`, whitespace, a
//! control or non-ASCII character) is refused, never escaped.

use std::collections::BTreeMap;

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Var(String),
}

/// A string with `${name}` placeholders, parsed once at policy load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("has an unterminated `${{`")]
    Unterminated,
    #[error("has a variable with an invalid name {0:?} (letters, digits, `_` and `.` only)")]
    BadName(String),
}

/// Longest value tvm will substitute.
pub const MAX_VALUE_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("variable {name} is not set for this caller")]
    Missing { name: String },
    #[error("variable {name} is empty")]
    Empty { name: String },
    #[error("variable {name} is longer than {MAX_VALUE_LEN} characters")]
    TooLong { name: String },
    #[error("variable {name} contains a character outside [A-Za-z0-9_+=,.@-]")]
    BadCharacter { name: String },
}

impl ValueError {
    /// The variable the value was for.
    pub fn name(&self) -> &str {
        match self {
            Self::Missing { name }
            | Self::Empty { name }
            | Self::TooLong { name }
            | Self::BadCharacter { name } => name,
        }
    }

    /// Is it a value the caller brought and a policy cannot vouch for: an
    /// oidc caller's subject or claim (its issuer's, not the policy's)?
    pub fn from_caller(&self) -> bool {
        let n = self.name();
        n == "caller.subject" || n == "caller.name" || n.starts_with("claim.")
    }
}

/// Is `name` a variable whose value the caller chooses: its own names (an
/// AWS caller's session, role or user name; an oidc caller's subject), an
/// oidc token's claims, the request's attributes? Not the account, the
/// partition, the configured issuer, the profile or tvm's session id.
pub fn caller_chosen(name: &str) -> bool {
    matches!(
        name,
        "caller.name"
            | "caller.session_name"
            | "caller.role_name"
            | "caller.user_name"
            | "caller.subject"
    ) || name.starts_with("claim.")
        || name.starts_with("attr.")
}

/// The whitelist for substituted values: the IAM name alphabet.
pub fn is_value_char(c: char) -> bool {
    crate::principal::is_iam_name_char(c)
}

pub fn check_value(name: &str, value: &str) -> Result<(), ValueError> {
    if value.is_empty() {
        return Err(ValueError::Empty { name: name.into() });
    }
    if value.len() > MAX_VALUE_LEN {
        return Err(ValueError::TooLong { name: name.into() });
    }
    if !value.chars().all(is_value_char) {
        return Err(ValueError::BadCharacter { name: name.into() });
    }
    Ok(())
}

/// Variables available to a rendering, each value already checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars(BTreeMap<String, String>);

impl Vars {
    pub fn new() -> Self {
        Self::default()
    }

    /// Insert a value; refused unless it passes the whitelist.
    pub fn insert(&mut self, name: &str, value: &str) -> Result<(), ValueError> {
        check_value(name, value)?;
        self.0.insert(name.to_string(), value.to_string());
        Ok(())
    }

    /// Insert a value the deployment configured (an issuer URL): the value
    /// alphabet and `:` and `/`. Refused otherwise, like [`Vars::insert`].
    pub fn insert_configured(&mut self, name: &str, value: &str) -> Result<(), ValueError> {
        match check_value(name, value) {
            Err(ValueError::BadCharacter { .. })
                if value
                    .chars()
                    .all(|c| is_value_char(c) || c == ':' || c == '/') =>
            {
                self.0.insert(name.to_string(), value.to_string());
                Ok(())
            }
            other => {
                other?;
                self.0.insert(name.to_string(), value.to_string());
                Ok(())
            }
        }
    }

    /// Add every variable of `other` (already checked), replacing same names.
    pub fn extend(&mut self, other: &Vars) {
        self.0
            .extend(other.0.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    /// The same variables, with each value `chosen` names one character
    /// long: what a template renders to when those values add no length.
    pub fn shortest(&self, chosen: impl Fn(&str) -> bool) -> Vars {
        Vars(
            self.0
                .iter()
                .map(|(k, v)| {
                    let v = if chosen(k) { "x" } else { v.as_str() };
                    (k.clone(), v.to_string())
                })
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn valid_var_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && !name.starts_with('.')
        && !name.ends_with('.')
}

impl Template {
    pub fn parse(s: &str) -> Result<Self, TemplateError> {
        let mut pieces = Vec::new();
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or(TemplateError::Unterminated)?;
            let name = &after[..end];
            if !valid_var_name(name) {
                return Err(TemplateError::BadName(name.chars().take(64).collect()));
            }
            pieces.push(Piece::Var(name.to_string()));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Self { pieces })
    }

    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var(v) => Some(v.as_str()),
            Piece::Text(_) => None,
        })
    }

    pub fn has_variables(&self) -> bool {
        self.variables().next().is_some()
    }

    /// The template's text with every variable left out.
    pub fn text_only(&self) -> String {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Text(t) => Some(t.as_str()),
                Piece::Var(_) => None,
            })
            .collect()
    }

    /// Substitute every variable. Values in `vars` were checked on insert.
    pub fn render(&self, vars: &Vars) -> Result<String, ValueError> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(name) => out.push_str(
                    vars.get(name)
                        .ok_or_else(|| ValueError::Missing { name: name.clone() })?,
                ),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_and_variables() {
        let t = Template::parse("table/${tenant}-${caller.account}/x").unwrap();
        assert_eq!(
            t.variables().collect::<Vec<_>>(),
            ["tenant", "caller.account"]
        );
        let mut v = Vars::new();
        v.insert("tenant", "acme").unwrap();
        v.insert("caller.account", "111122223333").unwrap();
        assert_eq!(t.render(&v).unwrap(), "table/acme-111122223333/x");
    }

    #[test]
    fn refuses_bad_templates() {
        assert_eq!(Template::parse("a${b"), Err(TemplateError::Unterminated));
        assert!(matches!(
            Template::parse("${}"),
            Err(TemplateError::BadName(_))
        ));
        assert!(matches!(
            Template::parse("${a b}"),
            Err(TemplateError::BadName(_))
        ));
        assert!(matches!(
            Template::parse("${${x}}"),
            Err(TemplateError::BadName(_))
        ));
    }

    #[test]
    fn refuses_values_that_could_change_meaning() {
        let mut v = Vars::new();
        for bad in [
            "",
            "a\"b",
            "a\\b",
            "a*",
            "a?",
            "${x}",
            "a b",
            "a\nb",
            "a/b",
            "a:b",
            "аcme",
            &"a".repeat(129),
        ] {
            assert!(v.insert("x", bad).is_err(), "{bad:?} was accepted");
        }
        assert!(v.insert("x", "Acme_1+=,.@-").is_ok());
    }

    #[test]
    fn missing_variable_is_an_error_not_an_empty_string() {
        let t = Template::parse("${tenant}").unwrap();
        assert_eq!(
            t.render(&Vars::new()),
            Err(ValueError::Missing {
                name: "tenant".into()
            })
        );
    }
}
