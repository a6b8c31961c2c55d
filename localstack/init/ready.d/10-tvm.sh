#!/usr/bin/env bash
# LocalStack ready hook: the tvm stack. Tables and policies come from
# scripts/bootstrap.py (the same source the moto stack and real accounts use).
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

"$PY" /opt/tvm/scripts/bootstrap.py all > /tmp/tvm-bootstrap.json

# The function's environment, with the table names bootstrap.py created.
"$PY" - "$OUT/function-env.json" <<'PYTHON'
import json, os, sys
tables = json.load(open("/tmp/tvm-bootstrap.json"))["tables"]
env = {
    "TVM_SESSIONS_TABLE": tables["sessions"],
    "TVM_APPROVALS_TABLE": tables["approvals"],
    "TVM_BREAKGLASS_TABLE": tables["breakglass"],
    "TVM_POLICY_PREFIX": os.environ.get("TVM_POLICY_PREFIX", "/tvm/policies/"),
    "TVM_IDENTITY_MODES": "sts",
    "TVM_SERVER_ID": os.environ.get("TVM_SERVER_ID", "tvm-localstack"),
    # The sts mode serves only named accounts: LocalStack's own by default.
    "TVM_ALLOWED_ACCOUNTS": os.environ.get("TVM_ALLOWED_ACCOUNTS", "000000000000"),
    "AWS_ENDPOINT_URL": "http://localhost.localstack.cloud:4566",
}
json.dump({"Variables": env}, open(sys.argv[1], "w"))
PYTHON

awslocal iam create-role --role-name tvm-function \
  --assume-role-policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}' \
  > /dev/null 2>&1 || true

awslocal lambda create-function \
  --function-name tvm \
  --runtime provided.al2023 \
  --architectures "${LAMBDA_ARCH:-arm64}" \
  --handler bootstrap \
  --memory-size 128 \
  --timeout 10 \
  --zip-file "fileb://$ZIP" \
  --role "arn:aws:iam::000000000000:role/tvm-function" \
  --environment "file://$OUT/function-env.json" > /dev/null
awslocal lambda wait function-active-v2 --function-name tvm

url=$(awslocal lambda create-function-url-config --function-name tvm --auth-type NONE --query FunctionUrl --output text)
printf '%s\n' "$url" > "$OUT/.url"
echo "tvm: ready at $url (identity mode sts, server id ${TVM_SERVER_ID:-tvm-localstack})"
