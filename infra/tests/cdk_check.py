"""The CDK construct (cdk/) deploys what the SAM template deploys.

`make cdk` synthesizes cdk/bin/example.ts (cdk synth, offline) into
cdk/cdk.out; this script then translates both the synthesized stacks and
template.yaml with the SAM translator (what CloudFormation's SAM transform
runs at deploy) and compares every resource, IAM included:

- TvmConfigured: every setting given as a prop (cdk/example-settings.json
  sets every template parameter); compared with template.yaml whose
  parameters default to the same values (a prop is its parameter's default).
- TvmDefaults: only the code (a CDK asset); compared with template.yaml
  as it is.

Run with the SAM venv's Python (samtranslator): .venv-sam/bin/python.
"""

import copy
import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "cdk", "cdk.out")
PSEUDO = {"AWS::Region": "eu-west-1", "AWS::AccountId": "111122223333", "AWS::Partition": "aws"}
# What CDK adds to every stack it synthesizes.
CDK_ONLY_PARAMETERS = {"BootstrapVersion"}
CDK_ONLY_RULES = {"CheckBootstrapVersion"}


class NoManagedPolicies:
    def load(self):
        return {}


def sam():
    with open(os.path.join(ROOT, "template.yaml")) as f:
        return yaml_parse(f.read())


def parameter_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return ",".join(v)
    return v


def with_defaults(template, values):
    """The template whose parameters default to `values` (what the props do)."""
    t = copy.deepcopy(template)
    for name, value in values.items():
        t["Parameters"][name]["Default"] = value
    return t


def normal(node):
    """GetAtt in one form (CloudFormation include writes "A.B", SAM ["A", "B"])."""
    if isinstance(node, list):
        return [normal(n) for n in node]
    if not isinstance(node, dict):
        return node
    if list(node) == ["Fn::GetAtt"] and isinstance(node["Fn::GetAtt"], str):
        return {"Fn::GetAtt": node["Fn::GetAtt"].split(".", 1)}
    return {k: normal(v) for k, v in node.items()}


def translated(template):
    return transform(copy.deepcopy(template), dict(PSEUDO), NoManagedPolicies())


def without_cdk_additions(t):
    t = copy.deepcopy(t)
    for p in CDK_ONLY_PARAMETERS:
        t.get("Parameters", {}).pop(p, None)
    for r in CDK_ONLY_RULES:
        t.get("Rules", {}).pop(r, None)
    for key in ("Parameters", "Rules"):
        if key in t and not t[key]:
            del t[key]
    return t


def differences(a, b, path=""):
    """Where two JSON values differ (at most a few)."""
    if type(a) is not type(b):
        return [f"{path}: {json.dumps(a)[:200]} != {json.dumps(b)[:200]}"]
    if isinstance(a, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{path}/{k}: only in {'CDK' if k in a else 'SAM'}")
            else:
                out.extend(differences(a[k], b[k], f"{path}/{k}"))
        return out
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items != {len(b)}"]
        return [d for x, y, i in zip(a, b, range(len(a))) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {json.dumps(a)[:200]} != {json.dumps(b)[:200]}"]


def compare(name, reference):
    with open(os.path.join(OUT, f"{name}.template.json")) as f:
        cdk = without_cdk_additions(json.load(f))
    reference["Resources"]["Function"]["Properties"]["CodeUri"] = cdk["Resources"]["Function"]["Properties"]["CodeUri"]
    got, want = normal(translated(cdk)), normal(translated(reference))
    # Not vacuous: the translated stack has the function, its role, the tables, the API.
    types = sorted(r["Type"] for r in got["Resources"].values())
    for needed in ["AWS::Lambda::Function", "AWS::IAM::Role", "AWS::DynamoDB::Table", "AWS::ApiGatewayV2::Api"]:
        assert needed in types, f"{name}: no {needed} in {types}"
    diff = differences(got, want)
    assert not diff, f"{name}: the CDK stack differs from the SAM template:\n" + "\n".join(diff[:20])
    policies = sum(len(p["PolicyDocument"]["Statement"]) for p in got["Resources"]["FunctionRole"]["Properties"]["Policies"])
    print(f"{name}: {len(got['Resources'])} resources, {policies} IAM statements on FunctionRole: the same as the SAM template's")
    return cdk


def main():
    with open(os.path.join(ROOT, "cdk", "example-settings.json")) as f:
        settings = json.load(f)
    template = sam()
    names = {p[0].lower() + p[1:]: p for p in template["Parameters"]}
    unknown = set(settings) - set(names)
    assert not unknown, f"example-settings.json names no template parameter: {unknown}"
    values = {names[k]: parameter_value(v) for k, v in settings.items()}

    missing = set(names) - set(settings)
    assert not missing, f"example-settings.json must set every setting (a prop each): {missing}"
    cdk = compare("TvmConfigured", with_defaults(template, values))

    cdk = compare("TvmDefaults", sam())
    code = cdk["Resources"]["Function"]["Properties"]["CodeUri"]
    assert "assets" in json.dumps(code["Bucket"]) and code["Key"].endswith(".zip"), f"the code is a CDK asset: {code}"


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"cdk_check: {e}", file=sys.stderr)
        sys.exit(1)
