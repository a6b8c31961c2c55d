//! The session policy template of a profile: parsed as JSON at load.
//! Variables may only appear inside string values, and they are substituted
//! in the parsed tree, so a rendering can never change the policy's
//! structure.

use serde_json::Value;

use crate::limits::MAX_SESSION_POLICY_CHARS;
use crate::template::{Template, TemplateError, ValueError, Vars};

#[derive(Debug, Clone, PartialEq)]
pub struct PolicyTemplate {
    tree: Node,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Literal(Value),
    Text(Template),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateJsonError {
    #[error("is not valid JSON: {0}")]
    Json(String),
    #[error("must be a JSON object with Version and Statement")]
    Shape,
    #[error("has a variable in an object key ({0:?}); variables may only appear in string values")]
    VariableInKey(String),
    #[error("{0}")]
    Template(#[from] TemplateError),
    #[error("is longer than {MAX_SESSION_POLICY_CHARS} characters even before substitution")]
    TooLong,
}

impl PolicyTemplate {
    pub fn parse(text: &str) -> Result<Self, TemplateJsonError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| TemplateJsonError::Json(e.to_string()))?;
        match &value {
            Value::Object(m) if m.contains_key("Version") && m.contains_key("Statement") => {}
            _ => return Err(TemplateJsonError::Shape),
        }
        let tree = Node::from_value(value)?;
        let bare = tree.render(&|t: &Template| Ok(t.text_only()));
        if bare.map(|v| v.to_string().len()).unwrap_or(0) > MAX_SESSION_POLICY_CHARS {
            return Err(TemplateJsonError::TooLong);
        }
        Ok(Self { tree })
    }

    pub fn variables(&self) -> impl Iterator<Item = &str> {
        let mut out = Vec::new();
        self.tree.collect_vars(&mut out);
        out.into_iter()
    }

    /// Substitute and serialise compactly.
    pub fn render(&self, vars: &Vars) -> Result<String, ValueError> {
        Ok(self
            .tree
            .render(&|t: &Template| t.render(vars))?
            .to_string())
    }
}

type Fill<'a> = dyn Fn(&Template) -> Result<String, ValueError> + 'a;

impl Node {
    fn from_value(v: Value) -> Result<Self, TemplateJsonError> {
        Ok(match v {
            Value::String(s) => {
                let t = Template::parse(&s)?;
                if t.has_variables() {
                    Node::Text(t)
                } else {
                    Node::Literal(Value::String(s))
                }
            }
            Value::Array(items) => Node::Array(
                items
                    .into_iter()
                    .map(Node::from_value)
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Node::Object(
                map.into_iter()
                    .map(|(k, v)| {
                        if k.contains("${") {
                            Err(TemplateJsonError::VariableInKey(k))
                        } else {
                            Ok((k, Node::from_value(v)?))
                        }
                    })
                    .collect::<Result<_, _>>()?,
            ),
            other => Node::Literal(other),
        })
    }

    fn collect_vars<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Node::Literal(_) => {}
            Node::Text(t) => out.extend(t.variables()),
            Node::Array(items) => items.iter().for_each(|n| n.collect_vars(out)),
            Node::Object(fields) => fields.iter().for_each(|(_, n)| n.collect_vars(out)),
        }
    }

    fn render(&self, fill: &Fill) -> Result<Value, ValueError> {
        Ok(match self {
            Node::Literal(v) => v.clone(),
            Node::Text(t) => Value::String(fill(t)?),
            Node::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|n| n.render(fill))
                    .collect::<Result<_, _>>()?,
            ),
            Node::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, n)| Ok((k.clone(), n.render(fill)?)))
                    .collect::<Result<_, ValueError>>()?,
            ),
        })
    }
}
