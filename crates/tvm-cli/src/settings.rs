//! Where tvm is: from flags, then `TVM_ENDPOINT` / `TVM_REGION` /
//! `TVM_SERVER_ID`, then `tvm_endpoint` / `tvm_region` / `tvm_server_id` in
//! the active AWS config profile, then a `[tvm]` section of the AWS config file.
//!
//! ```ini
//! [tvm]
//! endpoint = https://abc123.execute-api.eu-west-1.amazonaws.com
//! region = eu-west-1
//!
//! [profile staging]
//! tvm_endpoint = https://def456.execute-api.eu-west-1.amazonaws.com
//! ```

use std::collections::HashMap;
use std::path::PathBuf;

/// The sections of an AWS config file, keys lowercased.
pub fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut current: Option<String> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            let name = name.strip_prefix("profile ").map(str::trim).unwrap_or(name);
            current = Some(name.to_string());
            out.entry(name.to_string()).or_default();
            continue;
        }
        if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
            // Indented lines continue a nested block (e.g. s3 settings): skip them.
            if raw.starts_with(char::is_whitespace) {
                continue;
            }
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    out
}

fn config_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AWS_CONFIG_FILE") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws/config"))
}

/// Values from the AWS config file: the active profile's `tvm_*` keys win
/// over the `[tvm]` section.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FileSettings {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub server_id: Option<String>,
}

impl FileSettings {
    pub fn load() -> Self {
        let text = config_path()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let profile = std::env::var("AWS_PROFILE")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "default".into());
        Self::from_text(&text, &profile)
    }

    pub fn from_text(text: &str, profile: &str) -> Self {
        let sections = parse_ini(text);
        let from = |key: &str| {
            sections
                .get(profile)
                .and_then(|s| s.get(&format!("tvm_{key}")))
                .or_else(|| sections.get("tvm").and_then(|s| s.get(key)))
                .cloned()
        };
        Self {
            endpoint: from("endpoint"),
            region: from("region"),
            server_id: from("server_id"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "[default]\nregion = eu-west-1\n\n[tvm]\nendpoint = https://global\nregion = eu-central-1\n\n[profile staging]\ntvm_endpoint = https://staging\ns3 =\n  max_concurrent_requests = 2\n";

    #[test]
    fn the_profile_wins_over_the_tvm_section() {
        let s = FileSettings::from_text(CONFIG, "staging");
        assert_eq!(s.endpoint.as_deref(), Some("https://staging"));
        assert_eq!(s.region.as_deref(), Some("eu-central-1"));
        let d = FileSettings::from_text(CONFIG, "default");
        assert_eq!(d.endpoint.as_deref(), Some("https://global"));
        assert_eq!(
            FileSettings::from_text("", "default"),
            FileSettings::default()
        );
    }
}
