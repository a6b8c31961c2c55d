#!/usr/bin/env python3
"""Bootstrap a tvm stack: tables, policies and (for local runs) demo identities.

Works against any AWS endpoint boto3 can reach: the local moto server
(AWS_ENDPOINT_URL=http://127.0.0.1:PORT), LocalStack, or a real account with
your usual credentials. It is idempotent: run it again and it converges.

  bootstrap.py tables                  create the DynamoDB tables (infra/tables.json)
  bootstrap.py policies [FILES...]     put policy documents into SSM (default examples/policies/*)
  bootstrap.py demo-identities         create the local demo's IAM users, roles and the orders table
  bootstrap.py all                     all three; prints the demo identities as JSON

Every account of the demo gets what revocation writes through: the
customer-managed policy tvm-revocations (attached to every protected role)
and the revoker role that trusts only the function. With
TVM_DEMO_OTHER_ACCOUNT set (moto only: it hands out credentials for any
account), a second account gets them too, with a protected role of the same
name as one in the first.

TVM_DEMO_ATTACH_REVOCATIONS=0 leaves the revocation policy unattached: moto
treats every condition as satisfied, so an attached conditional deny would
deny every vended credential as soon as anything is revoked (and its chain
guard every chain). The local stack's tests evaluate the policy themselves.

Table names come from TVM_SESSIONS_TABLE / TVM_APPROVALS_TABLE /
TVM_BREAKGLASS_TABLE (defaults in infra/tables.json), the policy prefix from
TVM_POLICY_PREFIX (default /tvm/policies/).
"""

import argparse
import glob
import json
import os
import sys

import boto3
import yaml
from botocore.exceptions import ClientError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLES = os.path.join(ROOT, "infra", "tables.json")


def table_names():
    spec = json.load(open(TABLES))["tables"]
    return {k: os.environ.get(t["env"], t["default_name"]) for k, t in spec.items()}


def create_tables(ddb):
    spec = json.load(open(TABLES))["tables"]
    for key, t in spec.items():
        name = os.environ.get(t["env"], t["default_name"])
        schema = [{"AttributeName": t["key"]["hash"], "KeyType": "HASH"}]
        if "range" in t["key"]:
            schema.append({"AttributeName": t["key"]["range"], "KeyType": "RANGE"})
        args = dict(
            TableName=name,
            KeySchema=schema,
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": ty} for a, ty in t["attributes"].items()],
            BillingMode="PAY_PER_REQUEST",
            SSESpecification={"Enabled": True},
        )
        gsis = []
        for iname, idx in t["indexes"].items():
            ks = [{"AttributeName": idx["hash"], "KeyType": "HASH"}]
            if "range" in idx:
                ks.append({"AttributeName": idx["range"], "KeyType": "RANGE"})
            gsis.append({"IndexName": iname, "KeySchema": ks, "Projection": {"ProjectionType": "ALL"}})
        if gsis:
            args["GlobalSecondaryIndexes"] = gsis
        try:
            ddb.create_table(**args)
            ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
            log(f"table {name}: created")
        except ClientError as e:
            if e.response["Error"]["Code"] != "ResourceInUseException":
                raise
            log(f"table {name}: exists")
        ddb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": t["ttl_attribute"]},
        ) if not ttl_enabled(ddb, name) else None


def ttl_enabled(ddb, name):
    d = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    return d.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")


# The account the example policies name (the moto stack's).
EXAMPLE_ACCOUNT = "123456789012"


def put_policies(ssm, files, secure, account=None):
    """Put each document under the prefix. With `account`, the example
    account in the documents becomes that one (an emulator that runs as
    another account: LocalStack's is 000000000000)."""
    prefix = os.environ.get("TVM_POLICY_PREFIX", "/tvm/policies/")
    for path in files:
        text = open(path).read()
        if account and account != EXAMPLE_ACCOUNT:
            text = text.replace(EXAMPLE_ACCOUNT, account)
        doc = yaml.safe_load(text)
        name = f"{prefix}{doc['profile']}"
        ssm.put_parameter(
            Name=name,
            Value=text,
            Type="SecureString" if secure else "String",
            Overwrite=True,
            Tier="Advanced" if len(text) > 4096 else "Standard",
        )
        log(f"policy {name}: put")


REVOCATION_POLICY = ("/tvm/", "tvm-revocations")
REVOKER_ROLE = ("/tvm/", "tvm-revoker")
# What tvm renders when nothing is revoked: the chain guard alone.
EMPTY_REVOCATIONS = {"Version": "2012-10-17", "Statement": [{
    "Sid": "ChainOnlyIntoRevocableRoles", "Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*",
    "Condition": {"StringNotEquals": {"aws:ResourceTag/tvm-revocable": "true"}}}]}
PROTECTED_TAGS = [{"Key": "tvm-protected", "Value": "true"}, {"Key": "tvm-revocable", "Value": "true"}]


def account_resources(iam, account, function_arn):
    """The revocation policy and the revoker role of one account."""
    path, name = REVOCATION_POLICY
    policy_arn = f"arn:aws:iam::{account}:policy{path}{name}"
    try:
        iam.create_policy(PolicyName=name, Path=path, PolicyDocument=json.dumps(EMPTY_REVOCATIONS),
                          Description="tvm writes this: what it revoked. Attached to every protected role.")
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    rpath, rname = REVOKER_ROLE
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": function_arn}, "Action": "sts:AssumeRole"}]}
    try:
        iam.create_role(RoleName=rname, Path=rpath, AssumeRolePolicyDocument=json.dumps(trust))
    except iam.exceptions.EntityAlreadyExistsException:
        iam.update_assume_role_policy(RoleName=rname, PolicyDocument=json.dumps(trust))
    # moto authorizes IAM calls against Resource "*" only; the SAM,
    # CloudFormation and Terraform revokers name the policy's ARN.
    write_only_that = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Resource": "*",
        "Action": ["iam:ListPolicyVersions", "iam:CreatePolicyVersion", "iam:DeletePolicyVersion"]}]}
    iam.put_role_policy(RoleName=rname, PolicyName="revocation-policy-only", PolicyDocument=json.dumps(write_only_that))
    return policy_arn


def protected_role(iam, account, name, path, trust_principal, policy, revocations_arn, tags=PROTECTED_TAGS):
    """A role only `trust_principal` assumes, carrying the revocation policy."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": trust_principal},
                       "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]}],
    }
    try:
        iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(trust), Tags=tags)
    except iam.exceptions.EntityAlreadyExistsException:
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
        iam.tag_role(RoleName=name, Tags=tags)
    iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=json.dumps(policy))
    if os.environ.get("TVM_DEMO_ATTACH_REVOCATIONS", "1") != "0":
        iam.attach_role_policy(RoleName=name, PolicyArn=revocations_arn)
    return f"arn:aws:iam::{account}:role{path}{name}"


def other_account_iam(sts, account):
    """moto hands out credentials for any account's role: IAM in that account."""
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/bootstrap", RoleSessionName="bootstrap")["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"], region_name=sts.meta.region_name).client("iam")


def demo_identities(iam, sts, ddb):
    """The local demo's cast: the function's own identity, two protected roles
    that trust only it, a task role callers assume, and an analyst user."""
    account = sts.get_caller_identity()["Account"]
    out = {"account": account}

    def user(name, policy):
        try:
            iam.create_user(UserName=name)
        except iam.exceptions.EntityAlreadyExistsException:
            pass
        iam.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=json.dumps(policy))
        for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=name, AccessKeyId=k["AccessKeyId"])
        k = iam.create_access_key(UserName=name)["AccessKey"]
        return {"arn": f"arn:aws:iam::{account}:user/{name}", "access_key_id": k["AccessKeyId"], "secret_access_key": k["SecretAccessKey"]}

    def role(name, path, trust_principal, policy):
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": trust_principal},
                           "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]}],
        }
        try:
            iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(trust))
        except iam.exceptions.EntityAlreadyExistsException:
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
        iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=json.dumps(policy))
        return f"arn:aws:iam::{account}:role{path}{name}"

    allow_all = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    ddb_only = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}]}
    assume_only = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:GetCallerIdentity"], "Resource": "*"}]}

    # Locally the function runs as an IAM user; in AWS it is the execution role.
    out["function"] = user("tvm-function", allow_all)
    fn = out["function"]["arn"]
    revocations = account_resources(iam, account, fn)
    out["protected_roles"] = [
        protected_role(iam, account, "orders-tenant", "/tvm/", fn, ddb_only, revocations),
        protected_role(iam, account, "reports-readonly", "/tvm/", fn, ddb_only, revocations),
    ]
    # A role tvm sessions may chain into: it carries the revocation policy
    # (tvm-revocable) but is no profile's role (no tvm-protected).
    chain = protected_role(iam, account, "chain-target", "/tvm/", out["protected_roles"][0], ddb_only, revocations,
                           tags=[{"Key": "tvm-revocable", "Value": "true"}])
    # moto matches a trusted role ARN against the role itself, not its
    # sessions: trust any principal, narrowed to the role's sessions (AWS
    # applies the condition; moto treats it as satisfied).
    chain_trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["sts:AssumeRole", "sts:TagSession"],
        "Condition": {"ArnEquals": {"aws:PrincipalArn": out["protected_roles"][0]}}}]}
    iam.update_assume_role_policy(RoleName="chain-target", PolicyDocument=json.dumps(chain_trust))
    # orders-tenant sessions may chain into it (moto authorizes against
    # Resource "*" only; a real policy names the role).
    may_chain = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}
    iam.put_role_policy(RoleName="orders-tenant", PolicyName="chain", PolicyDocument=json.dumps(may_chain))
    out["chain_target"] = chain
    other = os.environ.get("TVM_DEMO_OTHER_ACCOUNT")
    if other:
        other_iam = other_account_iam(sts, other)
        other_revocations = account_resources(other_iam, other, fn)
        out["other_account"] = {
            "account": other,
            "protected_role": protected_role(other_iam, other, "orders-tenant", "/tvm/", fn, ddb_only, other_revocations),
        }
    out["caller"] = user("demo-caller", assume_only)
    out["analyst"] = user("analyst-ana", assume_only)
    # The caller plays an ECS task: it assumes the task role with a session
    # name per tenant. (IAM trust names the user; moto does not expand :root.)
    out["task_role"] = role("orders-task", "/", out["caller"]["arn"], assume_only)
    # The tenants' orders, and the browser app's notes (one item per signed-in
    # user: examples/oidc/browser-notes.yaml).
    for table, keys in (("orders", [("tenant", "HASH"), ("order_id", "RANGE")]), ("notes", [("user", "HASH")])):
        try:
            ddb.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in keys],
                AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k, _ in keys],
                BillingMode="PAY_PER_REQUEST",
            )
        except ClientError as e:
            if e.response["Error"]["Code"] != "ResourceInUseException":
                raise
    log("demo identities: ready")
    return out


def log(msg):
    print(msg, file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["tables", "policies", "demo-identities", "all"])
    ap.add_argument("files", nargs="*", help="policy documents (default: examples/policies/*.yaml)")
    ap.add_argument("--secure", action="store_true", help="store policies as SecureString")
    a = ap.parse_args()
    session = boto3.session.Session(region_name=os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1")))
    ddb, ssm = session.client("dynamodb"), session.client("ssm")
    files = a.files or sorted(glob.glob(os.path.join(ROOT, "examples", "policies", "*.yaml")))
    result = {"tables": table_names()}
    if a.what in ("tables", "all"):
        create_tables(ddb)
    if a.what in ("policies", "all"):
        # The examples name the moto account; seed them for the account an
        # emulator reports (AWS_ENDPOINT_URL set). In a real account, and for
        # documents of your own, they are put as they are: the examples'
        # grants never become live in your account by a rewrite.
        emulated = bool(os.environ.get("AWS_ENDPOINT_URL"))
        account = None if a.files or not emulated else session.client("sts").get_caller_identity()["Account"]
        result["account"] = account
        put_policies(ssm, files, a.secure, account)
    if a.what in ("demo-identities", "all"):
        # The demo's cast includes an IAM user allowed everything, with a
        # printed key: an emulator's only, never a real account's.
        if not os.environ.get("AWS_ENDPOINT_URL"):
            sys.exit("demo-identities (and all) create an IAM user allowed everything: they run only "
                     "against an emulator (set AWS_ENDPOINT_URL); use `tables` and `policies` in a real account")
        result["identities"] = demo_identities(session.client("iam"), session.client("sts"), ddb)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
