"""The SAM execution role's and the revoker's IAM statements, resolved for
one deployment (intrinsics substituted), as JSON on stdout.

The least-privilege test (crates/tvm-lambda/tests/it/least_privilege.rs)
replays every AWS call the real bootstrap made on every route against
these statements: a call they do not allow, or a grant no call used, fails.

Usage: python infra/tests/sam_policy.py VALUES_JSON
VALUES_JSON: {"Partition", "Region", "AccountId", "Accounts": [...],
              "SessionsTable", "ApprovalsTable", "BreakGlassTable", "NotifyTopic",
              "Conditions": {"Notify": true, "Traced": false},
              "LogGroup"?: the function's log group name,
              "Parameters"?: {template parameter: value},
              "RevocationPolicy"?: its path and name}
"""

import json
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_mapping(node, deep=True)}


CfnLoader.add_multi_constructor("!", _tag)

NO_VALUE = object()


def resolve(node, refs, conditions):
    """Substitute Ref, Sub, GetAtt and If; drop AWS::NoValue."""
    if isinstance(node, list):
        out = [resolve(x, refs, conditions) for x in node]
        return [x for x in out if x is not NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (k, v), = node.items()
        if k == "Ref":
            return NO_VALUE if v == "AWS::NoValue" else refs[v]
        if k == "GetAtt":
            return refs[v if isinstance(v, str) else ".".join(v)]
        if k == "Sub":
            text = v if isinstance(v, str) else v[0]
            return re.sub(r"\$\{([^}]+)\}", lambda m: refs[m.group(1)], text)
        if k == "If":
            cond, yes, no = v
            return resolve(yes if conditions[cond] else no, refs, conditions)
    out = {k: resolve(v, refs, conditions) for k, v in node.items()}
    return {k: v for k, v in out.items() if v is not NO_VALUE}


def load(path):
    with open(os.path.join(ROOT, path)) as f:
        return yaml.load(f, Loader=CfnLoader)


def main(values):
    sam = load("template.yaml")
    params = {k: p.get("Default") for k, p in sam["Parameters"].items()}
    params.update(values.get("Parameters", {}))
    arn = lambda service, rest, region=values["Region"], account=values["AccountId"]: (
        f"arn:{values['Partition']}:{service}:{region}:{account}:{rest}"
    )
    refs = {
        **params,
        "AWS::Partition": values["Partition"],
        "AWS::Region": values["Region"],
        "AWS::AccountId": values["AccountId"],
        "SessionsTable.Arn": arn("dynamodb", "table/" + values["SessionsTable"]),
        "ApprovalsTable.Arn": arn("dynamodb", "table/" + values["ApprovalsTable"]),
        "BreakGlassTable.Arn": arn("dynamodb", "table/" + values["BreakGlassTable"]),
        "FunctionLogGroup.Arn": arn("logs", "log-group:" + values.get("LogGroup", "/aws/lambda/tvm-tvm")),
        "NotifyTopic": values["NotifyTopic"],
    }
    role = sam["Resources"]["FunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    execution = resolve(role, refs, values["Conditions"])

    account = load("infra/cloudformation/tvm-account.yaml")
    defaults = {k: p.get("Default") for k, p in account["Parameters"].items()}
    revoker = []
    for acct in values["Accounts"]:
        name = values.get("RevocationPolicy", defaults["RevocationPolicyPath"] + defaults["RevocationPolicyName"])
        policy = "arn:{}:iam::{}:policy{}".format(values["Partition"], acct, name)
        statements = account["Resources"]["Revoker"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        revoker += resolve(statements, {"RevocationPolicy": policy}, {})
    json.dump({"execution": execution, "revoker": revoker}, sys.stdout, indent=1)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
