//! The route table in code is the one the docs and the infrastructure list:
//! `docs/api.md`'s Routes table, `template.yaml`'s HttpApi events and the
//! Terraform module's route keys all agree with `Route::ALL`. No emulator.

use std::collections::BTreeSet;

use tvm_lambda::routes::Route;

fn root(path: &str) -> String {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../");
    std::fs::read_to_string(format!("{file}{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn code_routes() -> BTreeSet<(String, String)> {
    Route::ALL
        .iter()
        .map(|e| (e.method.to_string(), e.path.to_string()))
        .collect()
}

/// Does an API Gateway route (`ANY`, `{proxy+}`) send this route to the function?
fn covers((gw_method, gw_path): &(String, String), (method, path): &(String, String)) -> bool {
    let method_ok = gw_method == "ANY" || gw_method == method;
    let path_ok = match gw_path.strip_suffix("/{proxy+}") {
        Some(prefix) => path.starts_with(&format!("{prefix}/")),
        None => gw_path == path,
    };
    method_ok && path_ok
}

/// Every route reaches the function, and the front has no route the function lacks.
fn agree(source: &str, front: &BTreeSet<(String, String)>) {
    let code = code_routes();
    for r in &code {
        assert!(
            front.iter().any(|g| covers(g, r)),
            "{source} does not route {r:?} to tvm"
        );
    }
    for g in front {
        assert!(
            code.iter().any(|r| covers(g, r)),
            "{source} routes {g:?}, which tvm does not serve"
        );
    }
}

#[test]
fn docs_api_md_lists_exactly_the_routes_in_code() {
    let doc = root("docs/api.md");
    let section = doc
        .split("\n## Routes\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("docs/api.md has a Routes section");
    let listed: BTreeSet<(String, String)> = section
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            match cells[..] {
                ["", method, path, ""] if path.starts_with("`/") => {
                    Some((method.to_string(), path.trim_matches('`').to_string()))
                }
                _ => None,
            }
        })
        .collect();
    assert_eq!(listed, code_routes());
}

#[test]
fn the_sam_template_routes_every_route_and_only_those() {
    let t: serde_yaml::Value = serde_yaml::from_str(&root("template.yaml")).unwrap();
    let events = t["Resources"]["Function"]["Properties"]["Events"]
        .as_mapping()
        .expect("the function's Events");
    let mut front = BTreeSet::new();
    for (_, e) in events {
        if e["Type"] == "HttpApi" {
            let p = &e["Properties"];
            let method = p["Method"].as_str().unwrap().to_ascii_uppercase();
            front.insert((method, p["Path"].as_str().unwrap().to_string()));
            let open = p["Auth"]["Authorizer"].as_str() == Some("NONE");
            assert_eq!(
                open,
                p["Path"] == "/v1/health",
                "only the health check is unauthenticated"
            );
        }
    }
    agree("template.yaml", &front);
}

#[test]
fn the_terraform_module_routes_every_route_and_only_those() {
    let tf = root("infra/terraform/modules/tvm/api.tf");
    let mut front = BTreeSet::new();
    for line in tf.lines().map(str::trim) {
        // "POST /v1/credentials" = "AWS_IAM"
        let Some((key, auth)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().trim_matches('"');
        let auth = auth.trim().trim_matches('"');
        let Some((method, path)) = key.split_once(' ') else {
            continue;
        };
        if !path.starts_with("/v1/") {
            continue;
        }
        assert_eq!(
            auth == "NONE",
            path == "/v1/health",
            "{key}: only the health check is unauthenticated"
        );
        front.insert((method.to_string(), path.to_string()));
    }
    agree("infra/terraform/modules/tvm/api.tf", &front);
}
