// Two deployments of tvm with the construct, synthesized by `make test`
// (infra/tests/cdk_check.py compares them with the SAM template):
// - TvmConfigured: every setting given (none left a CloudFormation
//   parameter; example-settings.json, which the check reads too), the code a
//   zip already in S3;
// - TvmDefaults: nothing but the code, a local directory (a CDK asset).

import { App, Stack } from "aws-cdk-lib";

import { TokenVendingMachine, TokenVendingMachineProps } from "../lib/tvm";
import settings from "../example-settings.json";

const app = new App();

new TokenVendingMachine(new Stack(app, "TvmConfigured"), "Tvm", {
  code: { bucket: "example-artifacts", key: "tvm/tvm-lambda-arm64.zip" },
  ...(settings as Omit<TokenVendingMachineProps, "code">),
});

new TokenVendingMachine(new Stack(app, "TvmDefaults"), "Tvm", {
  code: { path: process.env.TVM_CDK_CODE ?? "example-code" },
});

app.synth();
