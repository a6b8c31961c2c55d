#!/usr/bin/env bash
# LocalStack ready hook: the tvm stack. Tables and policies come from
# scripts/bootstrap.py (the same source the moto stack and real accounts use).
# The AWS CLI reaches LocalStack through AWS_ENDPOINT_URL (no wrapper needed).
set -euo pipefail

export AWS_ENDPOINT_URL=http://localhost:4566
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export AWS_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
PY=/opt/code/localstack/.venv/bin/python
ZIP=/opt/tvm/lambda/bootstrap.zip
OUT=/opt/tvm/localstack

if [ ! -f "$ZIP" ]; then
  echo "tvm: $ZIP is missing: run 'make package' on the host first" >&2
  exit 1
fi

# Seeds for the account LocalStack reports (its default account unless configured):
# the example policies name the moto account, and bootstrap.py rewrites it.
"$PY" /opt/tvm/scripts/bootstrap.py all > /tmp/tvm-bootstrap.json
ACCOUNT=$("$PY" -c 'import json; print(json.load(open("/tmp/tvm-bootstrap.json"))["identities"]["account"])')

# The function's environment, with the table names bootstrap.py created.
# (crates/tvm-cli/tests/it/localstack.rs runs this block as it is.)
"$PY" - "$OUT/function-env.json" /tmp/tvm-bootstrap.json <<'PYTHON'
import json, os, sys
seeded = json.load(open(sys.argv[2]))
tables = seeded["tables"]
env = {
    "TVM_SESSIONS_TABLE": tables["sessions"],
    "TVM_APPROVALS_TABLE": tables["approvals"],
    "TVM_BREAKGLASS_TABLE": tables["breakglass"],
    "TVM_POLICY_PREFIX": os.environ.get("TVM_POLICY_PREFIX", "/tvm/policies/"),
    "TVM_IDENTITY_MODES": "sts",
    "TVM_SERVER_ID": os.environ.get("TVM_SERVER_ID", "tvm-localstack"),
    # The sts mode serves only named accounts: the one LocalStack reports.
    "TVM_ALLOWED_ACCOUNTS": os.environ.get("TVM_ALLOWED_ACCOUNTS", seeded["identities"]["account"]),
    # Inside LocalStack's Lambda containers its DNS resolves this name.
    "AWS_ENDPOINT_URL": "http://localhost.localstack.cloud:4566",
}
json.dump({"Variables": env}, open(sys.argv[1], "w"))
PYTHON

aws iam create-role --role-name tvm-function \
  --assume-role-policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}' \
  > /dev/null 2>&1 || true

aws lambda create-function \
  --function-name tvm \
  --runtime provided.al2023 \
  --architectures "${LAMBDA_ARCH:-arm64}" \
  --handler bootstrap \
  --memory-size 128 \
  --timeout 10 \
  --zip-file "fileb://$ZIP" \
  --role "arn:aws:iam::$ACCOUNT:role/tvm-function" \
  --environment "file://$OUT/function-env.json" > /dev/null
aws lambda wait function-active-v2 --function-name tvm

url=$(aws lambda create-function-url-config --function-name tvm --auth-type NONE --query FunctionUrl --output text)
printf '%s\n' "$url" > "$OUT/.url"
# For clients on the host: the gateway is published on 127.0.0.1:4566, and a
# function URL's host name (*.localhost.localstack.cloud) resolves to
# 127.0.0.1 through public DNS (offline, add it to /etc/hosts).
cat > "$OUT/client.env" <<ENV
TVM_ENDPOINT=$url
TVM_SERVER_ID=${TVM_SERVER_ID:-tvm-localstack}
AWS_ENDPOINT_URL_STS=http://127.0.0.1:4566
ENV
echo "tvm: ready at $url (identity mode sts, server id ${TVM_SERVER_ID:-tvm-localstack}, account $ACCOUNT); client settings in localstack/client.env"
