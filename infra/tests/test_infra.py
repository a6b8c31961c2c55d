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


from sam_policy import CfnLoader  # noqa: E402  (CloudFormation short-form tags as plain values)


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
        # Statements inside !If count too: both branches.
        flat = []
        for s in policy:
            flat += [b for b in s["If"][1:] if isinstance(b, dict)] if isinstance(s, dict) and "If" in s else [s]
        for s in flat:
            if isinstance(s, dict) and "Effect" in s:
                if s.get("Sid") != "Tracing":  # X-Ray has no resource-level permissions
                    self.assertNotEqual(s.get("Resource"), "*", s.get("Sid"))
                self.assertNotIn("*", s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
        self.assertEqual({s.get("Sid") for s in flat if isinstance(s, dict)} >= {"Notify", "Tracing"}, True)


def cfn(*parts):
    return yaml.load(read(*parts), Loader=CfnLoader)


def config_default(name):
    """The default config.rs gives a setting read with iam_path(NAME, DEFAULT)."""
    return re.search(r'iam_path\("%s", "([^"]+)"\)' % name, CODE["config"]).group(1)


# What tvm renders when nothing is revoked (tvm-core's revocation policy):
# the chain guard alone. Every template creates the policy with it.
CHAIN_GUARD = {
    "Sid": "ChainOnlyIntoRevocableRoles",
    "Effect": "Deny",
    "Action": "sts:AssumeRole",
    "Resource": "*",
    "Condition": {"StringNotEquals": {"aws:ResourceTag/tvm-revocable": "true"}},
}


class Revocation(unittest.TestCase):
    """Revocation v2: tvm's role may only assume revoker roles for it; a
    revoker may only write the revocation policy; every protected role
    carries that policy."""

    def statements(self):
        return [s for s in sam()["Resources"]["FunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
                if isinstance(s, dict) and "Effect" in s]

    def test_the_execution_role_has_no_iam_action_and_assumes_revokers_by_name(self):
        for st in self.statements():
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            self.assertFalse(any(a.startswith("iam:") for a in actions), st["Sid"])
        assume = next(st for st in self.statements() if st["Sid"] == "AssumeRevokers")
        self.assertEqual(assume["Action"], "sts:AssumeRole")
        self.assertEqual(assume["Resource"], {"Sub": "arn:${AWS::Partition}:iam::*:role${RevokerRole}"})
        tf_policy = tf_resources("modules/tvm/function.tf", "aws_iam_role_policy")["function"]["policy"]
        self.assertNotIn('"iam:', tf_policy)
        self.assertIn('Sid      = "AssumeRevokers"', read("infra", "terraform", "modules", "tvm", "function.tf"))
        self.assertIn("role${var.revoker_role}", tf_policy)

    def test_sam_and_terraform_default_to_the_codes_names(self):
        params = sam()["Parameters"]
        variables = {k: v for block in tf("modules/tvm/variables.tf")["variable"] for k, v in block.items()}
        for env, param, var in [("TVM_REVOKER_ROLE", "RevokerRole", "revoker_role"),
                                ("TVM_REVOCATION_POLICY", "RevocationPolicy", "revocation_policy")]:
            self.assertEqual(params[param]["Default"], config_default(env), param)
            self.assertEqual(variables[var]["default"], config_default(env), var)
            self.assertTrue(re.match(params[param]["AllowedPattern"], config_default(env)), param)
        env = sam()["Resources"]["Function"]["Properties"]["Environment"]["Variables"]
        self.assertEqual(env["TVM_REVOKER_ROLE"], {"Ref": "RevokerRole"})
        self.assertEqual(env["TVM_REVOCATION_POLICY"], {"Ref": "RevocationPolicy"})
        self.assertEqual(env["TVM_REVOCATION_ACCOUNTS"], {"Ref": "RevocationAccounts"})

    def test_the_cloudformation_revoker_trusts_only_tvm_and_writes_only_the_policy(self):
        t = cfn("infra", "cloudformation", "tvm-account.yaml")
        revoker = t["Resources"]["Revoker"]["Properties"]
        trust = revoker["AssumeRolePolicyDocument"]["Statement"]
        self.assertEqual(len(trust), 1)
        self.assertEqual(trust[0]["Principal"], {"AWS": {"Ref": "TvmFunctionRoleArn"}})
        self.assertEqual(trust[0]["Action"], "sts:AssumeRole")
        allowed = [st for p in revoker["Policies"] for st in p["PolicyDocument"]["Statement"]]
        self.assertEqual(len(allowed), 1)
        self.assertEqual(sorted(allowed[0]["Action"]), ["iam:CreatePolicyVersion", "iam:DeletePolicyVersion", "iam:ListPolicyVersions"])
        self.assertEqual(allowed[0]["Resource"], {"Ref": "RevocationPolicy"})
        policy = t["Resources"]["RevocationPolicy"]
        self.assertEqual(policy["DeletionPolicy"], "Retain")
        self.assertEqual(policy["UpdateReplacePolicy"], "Retain")
        self.assertEqual(policy["Properties"]["PolicyDocument"]["Statement"], [CHAIN_GUARD])
        # StackSet-ready: nothing account-specific in it.
        self.assertIsNone(re.search(r"[0-9]{12}", read("infra", "cloudformation", "tvm-account.yaml")))
        defaults = {k: v.get("Default") for k, v in t["Parameters"].items()}
        self.assertEqual(defaults["RevokerRolePath"] + defaults["RevokerRoleName"], config_default("TVM_REVOKER_ROLE"))
        self.assertEqual(defaults["RevocationPolicyPath"] + defaults["RevocationPolicyName"], config_default("TVM_REVOCATION_POLICY"))

    def test_the_terraform_revoker_matches_the_cloudformation_one(self):
        text = read("infra", "terraform", "modules", "tvm-account", "main.tf")
        revoker = tf_resources("modules/tvm-account/main.tf", "aws_iam_role")["revoker"]
        self.assertIn("Principal = { AWS = var.tvm_function_role_arn }", text)
        self.assertNotIn("Condition", revoker["assume_role_policy"])
        inline = tf_resources("modules/tvm-account/main.tf", "aws_iam_role_policy")["revoker"]["policy"]
        self.assertIn('["iam:ListPolicyVersions", "iam:CreatePolicyVersion", "iam:DeletePolicyVersion"]', inline)
        self.assertIn("aws_iam_policy.revocations.arn", inline)
        policy = tf_resources("modules/tvm-account/main.tf", "aws_iam_policy")["revocations"]
        self.assertIn("ChainOnlyIntoRevocableRoles", policy["policy"])
        self.assertIn('"aws:ResourceTag/tvm-revocable" = "true"', policy["policy"])
        self.assertEqual(policy["lifecycle"][0]["ignore_changes"], ["policy"], "tvm owns the versions")
        variables = {k: v for block in tf("modules/tvm-account/variables.tf")["variable"] for k, v in block.items()}
        self.assertEqual(variables["revoker_role_path"]["default"] + variables["revoker_role_name"]["default"], config_default("TVM_REVOKER_ROLE"))
        self.assertEqual(variables["revocation_policy_path"]["default"] + variables["revocation_policy_name"]["default"], config_default("TVM_REVOCATION_POLICY"))

    def test_the_local_stack_creates_the_same_empty_policy(self):
        text = read("scripts", "bootstrap.py")
        self.assertIn('"Sid": "ChainOnlyIntoRevocableRoles"', text)
        self.assertIn('"aws:ResourceTag/tvm-revocable": "true"', text)
        self.assertIn('"ChainOnlyIntoRevocableRoles"', read("crates", "tvm-core", "src", "revocation.rs"))

    def test_every_protected_role_carries_the_policy_and_the_tag(self):
        attach = tf_resources("modules/protected-role/main.tf", "aws_iam_role_policy_attachment")["revocations"]
        self.assertEqual(attach["policy_arn"], "${local.revocation_policy_arn}")
        role = tf_resources("modules/protected-role/main.tf", "aws_iam_role")["this"]
        self.assertIn('"tvm-revocable" = "true"', role["tags"])
        # No inline revocation policy any more: tvm writes no role policy.
        self.assertEqual(list(tf_resources("modules/protected-role/main.tf", "aws_iam_role_policy")), ["permissions"])


class ProtectedRole(unittest.TestCase):
    def test_the_trust_names_only_the_execution_role_and_requires_the_source_identity_prefix(self):
        role = tf_resources("modules/protected-role/main.tf", "aws_iam_role")["this"]
        trust = role["assume_role_policy"]
        self.assertIn("var.tvm_function_role_arn", trust)
        self.assertIn('"sts:SourceIdentity" = "tvm-*"', trust)
        self.assertIn("sts:SetSourceIdentity", trust)
        self.assertIn("sts:TagSession", trust)
        self.assertIn("permissions_boundary", role)
        self.assertIn('"tvm-protected" = "true"', role["tags"])
        prefix = re.search(r'SOURCE_IDENTITY_PREFIX: &str = "([^"]+)"', CODE["render"]).group(1)
        self.assertEqual(prefix, "tvm-", "the templates require tvm-*")

    def test_the_cloudformation_protected_role_matches_the_terraform_one(self):
        t = cfn("infra", "cloudformation", "tvm-account.yaml")
        role = t["Resources"]["ProtectedRole"]
        self.assertEqual(role["Condition"], "HasRole")
        props = role["Properties"]
        trust = props["AssumeRolePolicyDocument"]["Statement"]
        self.assertEqual(len(trust), 1)
        self.assertEqual(trust[0]["Principal"], {"AWS": {"Ref": "TvmFunctionRoleArn"}})
        self.assertEqual(sorted(trust[0]["Action"]), ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"])
        prefix = re.search(r'SOURCE_IDENTITY_PREFIX: &str = "([^"]+)"', CODE["render"]).group(1)
        self.assertEqual(trust[0]["Condition"], {"StringLike": {"sts:SourceIdentity": prefix + "*"}})
        self.assertEqual(props["PermissionsBoundary"], {"Ref": "PermissionsPolicyArn"})
        self.assertEqual(props["ManagedPolicyArns"][0], {"Ref": "PermissionsPolicyArn"})
        self.assertEqual(props["ManagedPolicyArns"][1]["If"][1], {"Ref": "RevocationPolicy"})
        tags = {tag["Key"]: tag["Value"] for tag in props["Tags"]}
        self.assertEqual(tags, {"tvm-protected": "true", "tvm-revocable": "true"})
        self.assertEqual(t["Parameters"]["ProtectedRolePath"]["Default"], sam()["Parameters"]["ProtectedRolePath"]["Default"])
        for name in ["RevocationPolicy", "Revoker"]:
            self.assertEqual(t["Resources"][name]["Condition"], "CreateAccountResources")
        self.assertIn("ARoleNeedsItsPermissions", t["Rules"])

    def test_the_example_caller_may_invoke_only_tvms_vend_and_profiles(self):
        t = cfn("infra", "cloudformation", "example-caller.yaml")
        statements = t["Resources"]["Caller"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        self.assertEqual(len(statements), 1)
        self.assertEqual(statements[0]["Action"], "execute-api:Invoke")
        self.assertEqual(statements[0]["Resource"], [
            {"Sub": "${ApiExecutionArn}/*/POST/v1/credentials"},
            {"Sub": "${ApiExecutionArn}/*/GET/v1/profiles"},
        ])
        outputs = sam()["Outputs"]
        self.assertEqual(outputs["ApiExecutionArn"]["Value"], {"Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${Api}"})
        self.assertIn(r"[0-9]{12}:[a-z0-9]+$", t["Parameters"]["ApiExecutionArn"]["AllowedPattern"])

    def test_the_example_wires_the_role_to_the_execution_role(self):
        text = read("infra", "terraform", "examples", "complete", "main.tf")
        self.assertIn("tvm_function_role_arn = module.tvm.function_role_arn", text)
        # The account resources a role creates take the names the function writes to.
        self.assertIn("revoker_role          = module.tvm.revoker_role", text)
        self.assertIn("revocation_policy     = module.tvm.revocation_policy", text)
        account = tf_resources("modules/protected-role/main.tf", "aws_iam_role")  # parses
        self.assertTrue(account)
        main = read("infra", "terraform", "modules", "protected-role", "main.tf")
        for v in ["revoker_role_path", "revoker_role_name", "revocation_policy_path", "revocation_policy_name"]:
            self.assertIn(v, main)

    def test_every_tf_file_parses_and_every_variable_is_documented(self):
        files = glob.glob(os.path.join(TF, "**", "*.tf"), recursive=True)
        self.assertGreater(len(files), 6)
        for f in files:
            doc = tf(os.path.relpath(f, TF))
            for block in doc.get("variable", []):
                for name, v in block.items():
                    self.assertTrue(v.get("description"), f"{f}: variable {name} has no description")


def number_setting(name):
    """(default, low, high) of a setting config.rs reads with number() or secs()."""
    m = re.search(r'(?:number|secs)\(\s*"%s",\s*([^,]+),\s*([0-9_]+)\.\.=([0-9_]+)' % name, CODE["config"])
    num = lambda g: int(g.replace("_", "")) if re.fullmatch(r"[0-9_]+", g) else g.strip()
    return tuple(num(g) for g in m.groups())


def tf_variables(path="modules/tvm/variables.tf"):
    return {k: v for block in tf(path)["variable"] for k, v in block.items()}


# Every setting: environment variable, SAM parameter, Terraform variable.
SETTINGS = [
    ("TVM_POLICY_PREFIX", "PolicyPrefix", "policy_prefix"),
    ("TVM_IDENTITY_MODES", "IdentityModes", "identity_modes"),
    ("TVM_SERVER_ID", "ServerId", "server_id"),
    ("TVM_ALLOWED_ACCOUNTS", "AllowedAccounts", "allowed_accounts"),
    ("TVM_ALLOWED_ORG_IDS", "AllowedOrgIds", "allowed_org_ids"),
    ("TVM_ADMIN_PRINCIPALS", "AdminPrincipals", "admin_principals"),
    ("TVM_RATE_LIMIT", "RateLimit", "rate_limit"),
    ("TVM_POLICY_TTL_SECONDS", "PolicyTtlSeconds", "policy_ttl_seconds"),
    ("TVM_POLICY_MAX_STALE_SECONDS", "PolicyMaxStaleSeconds", "policy_max_stale_seconds"),
    ("TVM_AWS_TIMEOUT_MS", "AwsTimeoutMs", "aws_timeout_ms"),
    ("TVM_REVOKER_ROLE", "RevokerRole", "revoker_role"),
    ("TVM_REVOCATION_POLICY", "RevocationPolicy", "revocation_policy"),
    ("TVM_REVOCATION_ACCOUNTS", "RevocationAccounts", "revocation_accounts"),
    ("TVM_CORS_ORIGINS", "CorsOrigins", "cors_origins"),
    ("TVM_JWT_ISSUERS", "JwtIssuers", "jwt_issuers"),
    ("TVM_JWT_AUDIENCES", "JwtAudiences", "jwt_audiences"),
    ("TVM_JWKS_MAX_AGE_SECONDS", "JwksMaxAgeSeconds", "jwks_max_age_seconds"),
    ("TVM_POLICY_SIGNING_KEY", "PolicySigningKey", "policy_signing_key"),
    ("TVM_CA_BUNDLE", "CaBundle", "ca_bundle"),
    ("RUST_LOG", "LogLevel", "log_level"),
]


class Settings(unittest.TestCase):
    """Every documented setting is a SAM parameter and a Terraform variable,
    with the code's default and range."""

    def test_every_setting_the_code_reads_is_deployable(self):
        read_by_code = set(re.findall(r'"(TVM_[A-Z_]+)"', CODE["config"]))
        # Set from resources, not by the deployer.
        resources = {"TVM_SESSIONS_TABLE", "TVM_APPROVALS_TABLE", "TVM_BREAKGLASS_TABLE", "TVM_NOTIFY_TOPIC_ARN"}
        self.assertEqual(read_by_code - resources, {env for env, _, _ in SETTINGS if env.startswith("TVM_")})
        sam_env = sam()["Resources"]["Function"]["Properties"]["Environment"]["Variables"]
        tf_env = tf_resources("modules/tvm/function.tf", "aws_lambda_function")["tvm"]["environment"][0]["variables"]
        params, variables = sam()["Parameters"], tf_variables()
        for env, param, var in SETTINGS:
            self.assertIn(param, params, env)
            self.assertIn(var, variables, env)
            self.assertIn(param, json.dumps(sam_env[env]), env)
            self.assertIn(f"var.{var}", tf_env[env], env)
            self.assertTrue(variables[var].get("description"), var)

    def test_numbers_default_and_range_as_the_code(self):
        params, variables = sam()["Parameters"], tf_variables()
        for env, param, var in [("TVM_POLICY_TTL_SECONDS", "PolicyTtlSeconds", "policy_ttl_seconds"),
                                ("TVM_AWS_TIMEOUT_MS", "AwsTimeoutMs", "aws_timeout_ms"),
                                ("TVM_JWKS_MAX_AGE_SECONDS", "JwksMaxAgeSeconds", "jwks_max_age_seconds")]:
            default, low, high = number_setting(env)
            p = params[param]
            self.assertEqual((p["Default"], p["MinValue"], p["MaxValue"]), (default, low, high), param)
            self.assertEqual(variables[var]["default"], default, var)
            condition = variables[var]["validation"][0]["condition"]
            self.assertIn(f">= {low}", condition, var)
            self.assertIn(f"<= {high}", condition, var)
        # Max-stale defaults to a function of the TTL in the code: unset in both.
        derived, low, high = number_setting("TVM_POLICY_MAX_STALE_SECONDS")
        self.assertEqual(derived, "300.max(policy_ttl.as_secs() * 2)")
        self.assertEqual(params["PolicyMaxStaleSeconds"]["Default"], "")
        self.assertIsNone(variables["policy_max_stale_seconds"]["default"])
        self.assertIn(f">= {low}", variables["policy_max_stale_seconds"]["validation"][0]["condition"])
        self.assertIn(f"<= {high}", variables["policy_max_stale_seconds"]["validation"][0]["condition"])

    def test_strings_default_as_the_code(self):
        params, variables = sam()["Parameters"], tf_variables()
        rate = re.search(r"requests: (\d+),\s*per_seconds: (\d+)", CODE["config"]).groups()
        self.assertEqual(params["RateLimit"]["Default"], "/".join(rate))
        self.assertEqual(variables["rate_limit"]["default"], "/".join(rate))
        prefix = re.search(r'var\("TVM_POLICY_PREFIX"\)\.unwrap_or_else\(\|\| "([^"]+)"', CODE["config"]).group(1)
        self.assertEqual(params["PolicyPrefix"]["Default"], prefix)
        self.assertEqual(variables["policy_prefix"]["default"], prefix)
        # The code's default identity mode is apigw alone, and the sts mode needs a server id.
        self.assertEqual(params["IdentityModes"]["Default"], "apigw")
        self.assertEqual(variables["identity_modes"]["default"], ["apigw"])
        self.assertIn("sts identity mode needs a server id of at least 8", CODE["config"])
        # Every mode list with sts needs the server id; with jwt, issuers and audiences.
        modes = params["IdentityModes"]["AllowedValues"]
        self.assertEqual({m for m in modes}, {",".join(c) for n in (1, 2, 3)
                                              for c in __import__("itertools").combinations(["apigw", "sts", "jwt"], n)})
        rules = sam()["Rules"]
        for rule, mode in [("StsModeNeedsAServerId", "sts"), ("JwtModeNeedsIssuersAndAudiences", "jwt")]:
            # An Fn::Or of Fn::Equals [IdentityModes, MODE] (CDK's include reads no Fn::Contains).
            equals = rules[rule]["RuleCondition"]["Or"]
            self.assertTrue(all(e["Equals"][0] == {"Ref": "IdentityModes"} for e in equals), rule)
            listed = [e["Equals"][1] for e in equals]
            self.assertEqual(set(listed), {m for m in modes if mode in m.split(",")}, rule)
        self.assertIn("the jwt identity mode needs the audiences", CODE["config"])
        self.assertIn('contains(var.identity_modes, "jwt") || (length(var.jwt_issuers) > 0 && length(var.jwt_audiences) > 0)',
                      read("infra", "terraform", "modules", "tvm", "function.tf"))
        self.assertIn("{8,128}", params["ServerId"]["AllowedPattern"])
        self.assertIn("{8,128}", variables["server_id"]["validation"][0]["condition"])
        self.assertIn('length(var.server_id) >= 8', read("infra", "terraform", "modules", "tvm", "function.tf"))
        self.assertEqual(params["AdminPrincipals"]["Default"], "")
        self.assertEqual(variables["admin_principals"]["default"], [])


class Cors(unittest.TestCase):
    def test_the_apis_allow_what_the_function_allows(self):
        cors = read("crates", "tvm-lambda", "src", "routes", "cors.rs")
        joined = re.search(r'pub const ALLOW_HEADERS: &str =\s*"([^"]+)"', cors).group(1)
        headers = [h.strip() for h in joined.split(",")]
        methods = [m.strip() for m in re.search(r'pub const ALLOW_METHODS: &str = "([^"]+)"', cors).group(1).split(",")]
        max_age = int(re.search(r"pub const MAX_AGE_SECONDS: u32 = (\d+);", cors).group(1))
        resources = sam()["Resources"]
        for where in [resources["Api"]["Properties"]["CorsConfiguration"], resources["FunctionUrlConfig"]["Properties"]["Cors"]]:
            cond, config, no = where["If"]
            self.assertEqual((cond, no), ("HasCors", {"Ref": "AWS::NoValue"}))
            self.assertEqual(config["AllowHeaders"], headers)
            self.assertEqual(config["AllowMethods"], methods)
            self.assertEqual(config["MaxAge"], max_age)
            self.assertEqual(config["AllowOrigins"], {"Split": [",", {"Ref": "CorsOrigins"}]})
        api = tf_resources("modules/tvm/api.tf", "aws_apigatewayv2_api")["tvm"]
        content = api["dynamic"][0]["cors_configuration"]["content"][0]
        self.assertEqual(content["allow_headers"], headers)
        self.assertEqual(content["allow_methods"], methods)
        self.assertEqual(content["max_age"], max_age)
        self.assertEqual(content["allow_origins"], "${var.cors_origins}")


class DataSafety(unittest.TestCase):
    def test_tables_outlive_the_stack(self):
        resources = sam()["Resources"]
        for name in SAM_TABLES.values():
            t = resources[name]
            self.assertEqual((t["DeletionPolicy"], t["UpdateReplacePolicy"]), ("Retain", "Retain"), name)
            self.assertEqual(t["Properties"]["DeletionProtectionEnabled"], {"Ref": "TableDeletionProtection"})
        self.assertEqual(sam()["Parameters"]["TableDeletionProtection"]["Default"], "true")
        for name, t in tf_resources("modules/tvm/tables.tf", "aws_dynamodb_table").items():
            self.assertEqual(t["deletion_protection_enabled"], "${var.table_deletion_protection}", name)
        self.assertTrue(tf_variables()["table_deletion_protection"]["default"])

    def test_the_api_invokes_an_alias(self):
        fn = sam()["Resources"]["Function"]["Properties"]
        self.assertEqual(fn["AutoPublishAlias"], "live")
        integration = tf_resources("modules/tvm/api.tf", "aws_apigatewayv2_integration")["tvm"]
        self.assertEqual(integration["integration_uri"], "${aws_lambda_alias.live.invoke_arn}")
        permission = tf_resources("modules/tvm/api.tf", "aws_lambda_permission")["api"]
        self.assertEqual(permission["qualifier"], "${aws_lambda_alias.live.name}")
        self.assertTrue(tf_resources("modules/tvm/function.tf", "aws_lambda_function")["tvm"]["publish"])

    def test_the_provider_is_bounded_to_the_tested_major_and_locked(self):
        for f in glob.glob(os.path.join(TF, "**", "*.tf"), recursive=True):
            for block in tf(os.path.relpath(f, TF)).get("terraform", []):
                for req in block.get("required_providers", []):
                    version = req["aws"]["version"]
                    self.assertTrue("< 6.0" in version or version.startswith("~> 5."), f"{f}: {version}")
        lock = read("infra", "terraform", "examples", "complete", ".terraform.lock.hcl")
        self.assertIn('version     = "5.100.0"', lock)


class Monitoring(unittest.TestCase):
    """The alarms SAM and Terraform create watch the same metrics alike,
    and the metrics are the ones the decision line emits."""

    def sam_alarms(self):
        out = {}
        for name, r in sam()["Resources"].items():
            if r["Type"] == "AWS::CloudWatch::Alarm" and "MetricName" in r["Properties"]:
                p = r["Properties"]
                out[p["MetricName"]] = [p["Namespace"], p["MetricName"], p["Statistic"], p["Period"], p["EvaluationPeriods"], p["Threshold"]]
        return out

    def test_sam_and_terraform_alarm_alike(self):
        alarms = tf("modules/tvm/monitoring.tf")["locals"][0]["alarms"]
        tf_alarms = {v[1]: v[:6] for v in alarms.values()}
        self.assertEqual(self.sam_alarms(), tf_alarms)
        for v in alarms.values():
            anchor = v[6].split("docs/operations.md#")[1]
            self.assertIn(anchor.replace("-", " "), read("docs", "operations.md").lower().replace("-", " "), anchor)

    def test_every_tvm_metric_alarmed_on_is_emitted(self):
        log = read("crates", "tvm-lambda", "src", "routes", "log.rs")
        for ns, metric, *_ in self.sam_alarms().values():
            if ns == "tvm":
                self.assertIn(f'("{metric}", ', log, metric)
        for metric in ["ServerErrors", "Requests"]:
            self.assertIn(f'("{metric}", ', log, metric)
        self.assertIn('pub const METRICS_NAMESPACE: &str = "tvm";', log)


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
        self.assertNotIn("awslocal", text, "the AWS CLI reads AWS_ENDPOINT_URL itself")
        self.assertNotIn("000000000000", text, "the account is the one LocalStack reports")
        self.assertIn('["identities"]["account"]', text)
        self.assertIn("AWS_ENDPOINT_URL_STS=http://127.0.0.1:4566", text, "host clients reach the published port")


if __name__ == "__main__":
    unittest.main()
