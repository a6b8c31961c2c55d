#!/usr/bin/env python3
"""`make demo`: the whole vend path on one machine, no AWS account.

Starts the local stack (moto with IAM auth enforced, seeded; the real
`bootstrap` behind a Lambda runtime API; an HTTP front), plays two ECS tasks
of two tenants, vends credentials for each with `tvm credential-process`,
uses them with the AWS CLI, shows the session policies that reached STS and
the decision log lines, and stops everything.
"""

import difflib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = os.path.join(TARGET, "debug")
STATE = os.path.join(ROOT, ".tvm")
AWS = os.path.join(ROOT, ".venv", "bin", "aws")


def title(text):
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}")


# What a run of tvm-local leaves in its state directory.
STATE_FILES = ("stack.json", "calls.json", "lambda.log")


def read_stack(state):
    """The state file, or None while there is none (tvm-local writes it whole,
    by rename, so a file that exists is complete)."""
    try:
        with open(os.path.join(state, "stack.json")) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


def is_tvm_local(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv0 = f.read().split(b"\0")[0]
    except OSError:
        return False
    return os.path.basename(argv0) == b"tvm-local"


def wait_exit(pid, limit):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not is_tvm_local(pid):
            return True
        time.sleep(0.05)
    return False


def clear_stale_state(state, limit=20):
    """An earlier run that was killed (SIGKILL: no cleanup) leaves its state
    files, and maybe its tvm-local, behind. Stop that tvm-local if it still
    runs, then drop every file it wrote, so that nothing of it is read as this
    run's."""
    stale = read_stack(state) or {}
    pid = stale.get("pid")
    if isinstance(pid, int) and is_tvm_local(pid):
        print(f"stopping the local stack an earlier run left running (pid {pid})")
        os.kill(pid, signal.SIGTERM)
        if not wait_exit(pid, limit):
            os.kill(pid, signal.SIGKILL)
            wait_exit(pid, 5)
    for name in STATE_FILES:
        try:
            os.remove(os.path.join(state, name))
        except FileNotFoundError:
            pass


def wait_for_stack(proc, state=STATE, limit=90):
    """Bounded readiness poll for the state file of *this* tvm-local: it names
    its own pid, so a file left by another run never passes."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"tvm-local exited early with {proc.returncode}")
        stack = read_stack(state)
        if stack is not None and stack.get("pid") == proc.pid:
            return stack
        time.sleep(0.05)
    sys.exit(f"the local stack did not come up within {limit}s")


def stop_with_parent():
    """For the child: SIGTERM (a clean stop) when the demo dies, even by
    SIGKILL, so that no stack outlives the run that started it."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def hook():
        PR_SET_PDEATHSIG = 1
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the demo died before prctl
            os._exit(1)

    return hook


def start_stack(state=STATE):
    os.makedirs(state, exist_ok=True)
    clear_stale_state(state)
    proc = subprocess.Popen(
        [os.path.join(BIN, "tvm-local"), "--state-dir", state],
        env=clean_env(),
        preexec_fn=stop_with_parent(),
    )
    try:
        return proc, wait_for_stack(proc, state)
    except BaseException:
        stop_stack(proc)
        raise


def stop_stack(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def clean_env(**extra):
    """No AWS settings from the developer's shell leak into the demo."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, **extra)
    return env


def task_credentials(stack, tenant):
    """The demo caller plays the ECS task of one tenant."""
    caller = stack["identities"]["caller"]
    sts = boto3.client(
        "sts",
        endpoint_url=stack["aws_endpoint"],
        region_name=stack["region"],
        aws_access_key_id=caller["access_key_id"],
        aws_secret_access_key=caller["secret_access_key"],
    )
    return sts.assume_role(RoleArn=stack["identities"]["task_role"], RoleSessionName=tenant)["Credentials"]


def tvm_credential_process(stack, creds, profile="orders-tenant"):
    # The local front checks SigV4 like API Gateway's AWS_IAM authorization.
    cmd = [
        os.path.join(BIN, "tvm"), "credential-process", "--profile", profile,
        "--endpoint", stack["endpoint"], "--region", stack["region"],
    ]
    env = clean_env(
        AWS_ACCESS_KEY_ID=creds["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
        AWS_SESSION_TOKEN=creds["SessionToken"],
        AWS_REGION=stack["region"],
    )
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)


def oidc_vend(stack, sub, **claims):
    """Sign in at the local OIDC issuer as `sub`, then vend with the ID token
    as `Authorization: Bearer` (no AWS credentials at all)."""
    query = urllib.parse.urlencode({"sub": sub, "aud": stack["oidc_audience"], **claims})
    with urllib.request.urlopen(f"{stack['oidc_issuer']}/token?{query}", timeout=10) as r:
        token = json.load(r)["id_token"]
    req = urllib.request.Request(
        f"{stack['endpoint']}/v1/credentials", method="POST",
        data=json.dumps({"profile": "browser-notes"}).encode(),
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def aws_cli(stack, vended, *args):
    env = clean_env(
        AWS_ACCESS_KEY_ID=vended["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=vended["SecretAccessKey"],
        AWS_SESSION_TOKEN=vended["SessionToken"],
        AWS_DEFAULT_REGION=stack["region"],
        AWS_ENDPOINT_URL=stack["aws_endpoint"],
    )
    out = subprocess.run([AWS, *args, "--output", "json"], env=env, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        sys.exit(f"aws {' '.join(args)} failed: {out.stderr}")
    return json.loads(out.stdout) if out.stdout.strip() else {}


def main():
    for b in ("tvm-local", "tvm", "bootstrap"):
        if not os.path.exists(os.path.join(BIN, b)):
            sys.exit(f"{BIN}/{b} is missing: run `make demo` (it builds first)")
    title("Starting the local stack: moto (IAM auth enforced), the real bootstrap, a SigV4-checking HTTP front")
    proc, stack = start_stack()
    try:
        print(f"tvm endpoint {stack['endpoint']}, AWS emulator {stack['aws_endpoint']}")

        for tenant in ("acme", "globex"):
            title(f"Tenant {tenant}: an ECS task of orders-task, session name {tenant!r}")
            creds = task_credentials(stack, tenant)
            out = tvm_credential_process(stack, creds)
            if out.returncode != 0:
                sys.exit(f"tvm credential-process failed: {out.stderr}")
            vended = json.loads(out.stdout)
            shown = {k: ("<redacted>" if k in ("SecretAccessKey", "SessionToken") else v) for k, v in vended.items()}
            print("tvm credential-process ->", json.dumps(shown))
            who = aws_cli(stack, vended, "sts", "get-caller-identity")
            print("aws sts get-caller-identity ->", who["Arn"])
            aws_cli(stack, vended, "dynamodb", "put-item", "--table-name", "orders",
                    "--item", json.dumps({"tenant": {"S": tenant}, "order_id": {"S": "o-1"}}))
            print(f"aws dynamodb put-item orders (tenant {tenant}) -> ok")

        title("A browser user: an ID token of the local OIDC issuer, no AWS credentials")
        vended = oidc_vend(stack, "demo-user", groups="notes-users", tenant="acme")
        print("POST /v1/credentials (Authorization: Bearer <id token>) ->", vended["RoleArn"], vended["Expiration"])
        who = aws_cli(stack, vended, "sts", "get-caller-identity")
        print("aws sts get-caller-identity ->", who["Arn"])

        title("Refusals: a blocked tenant and a profile that does not exist")
        for tenant, profile in (("blocked-demo", "orders-tenant"), ("acme", "payroll")):
            out = tvm_credential_process(stack, task_credentials(stack, tenant), profile)
            print(f"{tenant} -> {profile}: exit {out.returncode}: {out.stderr.strip()}")
    finally:
        stop_stack(proc)

    calls = json.load(open(os.path.join(STATE, "calls.json")))
    policies = []
    for c in calls:
        p = dict(c["params"] or [])
        # tvm's own AssumeRole calls (the demo's task-role calls carry no SourceIdentity).
        if c["action"] == "AssumeRole" and "SourceIdentity" in p:
            policies.append((p.get("Tags.member.1.Value"), p))
    # The browser user's: scoped to its token's subject.
    oidc = [p for _, p in policies if p["RoleSessionName"].startswith("demo-user.")]
    policies = [(t, p) for t, p in policies if not p["RoleSessionName"].startswith("demo-user.")]
    title("What reached STS AssumeRole (recorded by the proxy in front of the emulator)")
    for tenant, p in policies:
        print(f"-- tenant {tenant}: RoleArn={p['RoleArn']} DurationSeconds={p['DurationSeconds']} "
              f"SourceIdentity={p['SourceIdentity']} RoleSessionName={p['RoleSessionName']}")
        print(json.dumps(json.loads(p["Policy"]), indent=2))
    if len(policies) == 2:
        a, b = (json.dumps(json.loads(p["Policy"]), indent=2).splitlines() for _, p in policies)
        title("The two session policies differ only in their tenant")
        for line in difflib.unified_diff(a, b, "acme", "globex", lineterm="", n=0):
            print(line)

    for p in oidc:
        title("The browser user's session policy: its partition key is the token's subject")
        print(f"-- RoleSessionName={p['RoleSessionName']} SourceIdentity={p['SourceIdentity']}")
        print(json.dumps(json.loads(p["Policy"]), indent=2))

    title("Decision log lines (one per request)")
    for line in open(os.path.join(STATE, "lambda.log")):
        if '"type":"decision"' in line:
            print(line.rstrip())
    title("Done: the stack is stopped")


if __name__ == "__main__":
    main()
