"""Cross-checks of the deployment definitions, offline.

`terraform validate` cannot download providers here, and SAM and Terraform
are hand-written twice: these tests hold them to the things that matter —
IAM auth on every route but health, the tables' keys as infra/tables.json
(and the code) has them, protected roles trusting only the execution role,
the function's settings — and the LocalStack hooks to the same names.

Run: .venv/bin/python -m unittest discover -s infra/tests -v
"""

import glob
import json
import os
import re
import unittest

import hcl2
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


TABLES = json.loads(read("infra", "tables.json"))["tables"]
TF = os.path.join(ROOT, "infra", "terraform")


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !Sub, ...) as plain values."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_mapping(node, deep=True)}


CfnLoader.add_multi_constructor("!", _tag)


def sam():
    return yaml.load(read("template.yaml"), Loader=CfnLoader)


def unquote(v):
    if isinstance(v, str) and len(v) >= 2 and v[0] == v[-1] == '"':
        return v[1:-1]
    if isinstance(v, dict):
        return {unquote(k): unquote(x) for k, x in v.items()}
    if isinstance(v, list):
        return [unquote(x) for x in v]
    return v


def tf(path):
    with open(os.path.join(TF, path)) as f:
        return unquote(hcl2.load(f))


def tf_resources(path, kind):
    out = {}
    for block in tf(path).get("resource", []):
        for k, named in block.items():
            if k == kind:
                out.update(named)
    return out


SAM_TABLES = {"sessions": "SessionsTable", "approvals": "ApprovalsTable", "breakglass": "BreakGlassTable"}
TF_TABLES = {"sessions": "sessions", "approvals": "approvals", "breakglass": "breakglass"}
CODE = {
    "dynamo": read("crates", "tvm-lambda", "src", "aws", "dynamo.rs"),
    "config": read("crates", "tvm-lambda", "src", "config.rs"),
    "render": read("crates", "tvm-core", "src", "render.rs"),
}


class Tables(unittest.TestCase):
    def test_sam_tables_match_tables_json(self):
        resources = sam()["Resources"]
        for key, spec in TABLES.items():
            props = resources[SAM_TABLES[key]]["Properties"]
            schema = {k["KeyType"]: k["AttributeName"] for k in props["KeySchema"]}
            self.assertEqual(schema.get("HASH"), spec["key"]["hash"], key)
            self.assertEqual(schema.get("RANGE"), spec["key"].get("range"), key)
            attrs = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
            self.assertEqual(attrs, spec["attributes"], key)
            gsis = {
                g["IndexName"]: {k["KeyType"]: k["AttributeName"] for k in g["KeySchema"]}
                for g in props.get("GlobalSecondaryIndexes", [])
            }
            expected = {n: {"HASH": i["hash"], **({"RANGE": i["range"]} if "range" in i else {})} for n, i in spec["indexes"].items()}
            self.assertEqual(gsis, expected, key)
            self.assertEqual(props["TimeToLiveSpecification"], {"AttributeName": spec["ttl_attribute"], "Enabled": True})
            self.assertTrue(props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"])
            self.assertTrue(props["SSESpecification"]["SSEEnabled"])

    def test_terraform_tables_match_tables_json(self):
        tables = tf_resources("modules/tvm/tables.tf", "aws_dynamodb_table")
        for key, spec in TABLES.items():
            t = tables[TF_TABLES[key]]
            self.assertEqual(t["hash_key"], spec["key"]["hash"], key)
            self.assertEqual(t.get("range_key"), spec["key"].get("range"), key)
            attrs = {a["name"]: a["type"] for a in t["attribute"]}
            self.assertEqual(attrs, spec["attributes"], key)
            gsis = {g["name"]: {"hash": g["hash_key"], **({"range": g["range_key"]} if "range_key" in g else {})} for g in t.get("global_secondary_index", [])}
            self.assertEqual(gsis, spec["indexes"], key)
            self.assertEqual(t["ttl"][0]["attribute_name"], spec["ttl_attribute"])
            self.assertTrue(t["point_in_time_recovery"][0]["enabled"])

    def test_the_code_writes_the_keys_the_tables_are_built_on(self):
        spec = TABLES["sessions"]
        names = {spec["key"]["hash"], spec["ttl_attribute"], *spec["attributes"]}
        for name in names:
            self.assertIn(f'"{name}"', CODE["dynamo"], f"dynamo.rs does not write {name}")


def sam_routes():
    resources = sam()["Resources"]
    api = resources["Api"]["Properties"]
    default = api["Auth"]["DefaultAuthorizer"]
    routes = {}
    for event in resources["Function"]["Properties"]["Events"].values():
        self_props = event["Properties"]
        assert event["Type"] == "HttpApi"
        auth = self_props.get("Auth", {}).get("Authorizer", default)
        routes[f'{self_props["Method"]} {self_props["Path"]}'] = auth
    return routes


class Routes(unittest.TestCase):
    def test_every_sam_route_but_health_is_aws_iam(self):
        self.assertEqual(sam()["Resources"]["Api"]["Properties"]["Auth"]["DefaultAuthorizer"], "AWS_IAM")
        for route, auth in sam_routes().items():
            self.assertEqual(auth, "NONE" if route == "GET /v1/health" else "AWS_IAM", route)

    def test_every_terraform_route_but_health_is_aws_iam(self):
        routes = tf("modules/tvm/api.tf")["locals"][0]["routes"]
        for route, auth in routes.items():
            self.assertEqual(auth, "NONE" if route == "GET /v1/health" else "AWS_IAM", route)
        route = tf_resources("modules/tvm/api.tf", "aws_apigatewayv2_route")["tvm"]
        self.assertEqual(route["authorization_type"], "${each.value}")

    def test_sam_and_terraform_expose_the_same_routes(self):
        routes = tf("modules/tvm/api.tf")["locals"][0]["routes"]
        self.assertEqual(sam_routes(), routes)

    def test_the_brief_routes_are_all_served(self):
        routes = set(sam_routes())
        for r in ["POST /v1/credentials", "GET /v1/profiles", "GET /v1/health", "POST /v1/callers/revoke"]:
            self.assertIn(r, routes)


class Function(unittest.TestCase):
    def test_runtime_architecture_and_handler(self):
        fn = sam()["Resources"]["Function"]
        self.assertEqual(fn["Metadata"]["BuildMethod"], "rust-cargolambda")
        props = fn["Properties"]
        self.assertEqual((props["Runtime"], props["Architectures"], props["Handler"]), ("provided.al2023", ["arm64"], "bootstrap"))
        lam = tf_resources("modules/tvm/function.tf", "aws_lambda_function")["tvm"]
        self.assertEqual((lam["runtime"], lam["architectures"], lam["handler"]), ("provided.al2023", ["arm64"], "bootstrap"))

    def test_sam_builds_the_function_crate_alone(self):
        # cargo-lambda runs in CodeUri: the function's crate, so that the
        # bootstrap gets the function's dependency features only.
        fn = sam()["Resources"]["Function"]
        manifest = read(fn["Properties"]["CodeUri"], "Cargo.toml")
        self.assertIn('name = "tvm-lambda"', manifest)
        self.assertIn('[[bin]]\nname = "{}"'.format(fn["Metadata"]["BuildProperties"]["Binary"]), manifest)

    def test_every_environment_variable_is_one_the_code_reads(self):
        sam_env = sam()["Resources"]["Function"]["Properties"]["Environment"]["Variables"]
        tf_env = tf_resources("modules/tvm/function.tf", "aws_lambda_function")["tvm"]["environment"][0]["variables"]
        self.assertEqual(set(sam_env), set(tf_env))
        for name in sam_env:
            if name in ("RUST_LOG", "TVM_NOTIFY_TOPIC_ARN"):
                continue  # read by tracing-subscriber; the notifier (gates issue)
            self.assertIn(f'"{name}"', CODE["config"], f"config.rs does not read {name}")

    def test_the_function_serves_the_deploying_account_unless_told_otherwise(self):
        # An empty allowlist would admit every AWS account (trust model v2).
        sam_env = sam()["Resources"]["Function"]["Properties"]["Environment"]["Variables"]
        self.assertEqual(
            sam_env["TVM_ALLOWED_ACCOUNTS"],
            {"If": ["AccountsGiven", {"Ref": "AllowedAccounts"}, {"Ref": "AWS::AccountId"}]},
        )
        self.assertEqual(sam()["Conditions"]["AccountsGiven"], {"Not": [{"Equals": [{"Ref": "AllowedAccounts"}, ""]}]})
        tf_env = tf_resources("modules/tvm/function.tf", "aws_lambda_function")["tvm"]["environment"][0]["variables"]
        self.assertIn("local.account_id", tf_env["TVM_ALLOWED_ACCOUNTS"])
        self.assertIn("length(var.allowed_accounts) > 0", tf_env["TVM_ALLOWED_ACCOUNTS"])

    def test_the_execution_role_assumes_only_tagged_roles_on_the_protected_path(self):
        policy = sam()["Resources"]["FunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        assume = next(s for s in policy if isinstance(s, dict) and s.get("Sid") == "AssumeProtectedRoles")
        self.assertEqual(sorted(assume["Action"]), ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"])
        self.assertIn("${ProtectedRolePath}", assume["Resource"]["Sub"])
        self.assertEqual(assume["Condition"]["StringEquals"], {"aws:ResourceTag/tvm-protected": "true"})
        for s in policy:
            if isinstance(s, dict) and "Effect" in s:
                self.assertNotEqual(s.get("Resource"), "*", s.get("Sid"))
                self.assertNotIn("*", s["Action"] if isinstance(s["Action"], list) else [s["Action"]])


class ProtectedRole(unittest.TestCase):
    def test_the_trust_names_only_the_execution_role_and_requires_the_source_identity_prefix(self):
        role = tf_resources("modules/protected-role/main.tf", "aws_iam_role")["this"]
        trust = role["assume_role_policy"]
        self.assertIn("var.tvm_function_role_arn", trust)
        self.assertIn('"sts:SourceIdentity" = "${var.source_identity_prefix}*"', trust)
        self.assertIn("sts:SetSourceIdentity", trust)
        self.assertIn("sts:TagSession", trust)
        self.assertIn("permissions_boundary", role)
        self.assertIn('"tvm-protected" = "true"', role["tags"])
        prefix = re.search(r'SOURCE_IDENTITY_PREFIX: &str = "([^"]+)"', CODE["render"]).group(1)
        variables = tf("modules/protected-role/variables.tf")["variable"]
        default = next(v["source_identity_prefix"]["default"] for v in variables if "source_identity_prefix" in v)
        self.assertEqual(default, prefix)

    def test_the_example_wires_the_role_to_the_execution_role(self):
        text = read("infra", "terraform", "examples", "complete", "main.tf")
        self.assertIn("tvm_function_role_arn = module.tvm.function_role_arn", text)

    def test_every_tf_file_parses_and_every_variable_is_documented(self):
        files = glob.glob(os.path.join(TF, "**", "*.tf"), recursive=True)
        self.assertGreater(len(files), 6)
        for f in files:
            doc = tf(os.path.relpath(f, TF))
            for block in doc.get("variable", []):
                for name, v in block.items():
                    self.assertTrue(v.get("description"), f"{f}: variable {name} has no description")


class LocalStack(unittest.TestCase):
    def test_compose_parses_and_mounts_the_shared_sources(self):
        compose = yaml.safe_load(read("localstack", "docker-compose.yml"))
        svc = compose["services"]["localstack"]
        self.assertEqual(svc["ports"], ["127.0.0.1:4566:4566"])
        mounts = {v.split(":")[1]: v.split(":")[0] for v in svc["volumes"]}
        self.assertEqual(mounts["/opt/tvm/scripts"], "../scripts")
        self.assertEqual(mounts["/opt/tvm/infra/tables.json"], "../infra/tables.json")
        self.assertEqual(mounts["/opt/tvm/examples/policies"], "../examples/policies")

    def test_hooks_seed_with_bootstrap_py_and_use_its_table_names(self):
        hooks = glob.glob(os.path.join(ROOT, "localstack", "init", "ready.d", "*.sh"))
        self.assertTrue(hooks)
        text = "\n".join(read(h) for h in hooks)
        self.assertIn("/opt/tvm/scripts/bootstrap.py all", text)
        for key, spec in TABLES.items():
            self.assertIn(f'"{spec["env"]}": tables["{key}"]', text)
        self.assertNotIn("create-table", text, "tables come from bootstrap.py only")


if __name__ == "__main__":
    unittest.main()
