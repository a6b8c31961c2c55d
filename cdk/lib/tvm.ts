// tvm as a CDK construct. The deployment is defined once, in the SAM
// template (template.yaml at the repository's root): this construct
// includes it (CloudFormation include, the SAM transform kept), sets its
// parameters from typed props and points the function at your code. SAM,
// CDK and the checks made of the template (cfn-lint, checkov, the
// least-privilege test) therefore describe the same resources and IAM;
// infra/tests/cdk_check.py proves it on every `make test` by translating
// both with the SAM translator and comparing them.
//
// One TokenVendingMachine per stack: the template's logical ids are kept
// (SessionsTable, FunctionRole, ...), so that a stack moved from SAM to CDK
// keeps its tables.

import * as path from "path";

import { Stack } from "aws-cdk-lib";
import { CfnInclude } from "aws-cdk-lib/cloudformation-include";
import { CfnTable } from "aws-cdk-lib/aws-dynamodb";
import { CfnRole } from "aws-cdk-lib/aws-iam";
import { Asset } from "aws-cdk-lib/aws-s3-assets";
import { CfnFunction } from "aws-cdk-lib/aws-sam";
import { Construct } from "constructs";

/** The template this construct deploys. */
export const TEMPLATE = path.join(__dirname, "..", "..", "..", "template.yaml");

/**
 * Where the function's code is: a directory holding the `bootstrap` binary
 * (`make package` writes `target/lambda/bootstrap/`; it is zipped as a CDK
 * asset), or a zip already in S3 (a release's `tvm-lambda-arm64.zip`).
 */
export type TvmCode =
  | { readonly path: string }
  | { readonly bucket: string; readonly key: string };

/**
 * The settings: one prop per template parameter, with the template's
 * description and default (docs/deploy.md). A prop becomes its
 * parameter's default; an unset prop leaves the template's.
 */
export interface TokenVendingMachineProps {
  /** The function's code. */
  readonly code: TvmCode;
  /**
   * SSM path of the policy documents (one parameter per profile), below the root.
   * (`PolicyPrefix`; default: '/tvm/policies/')
   */
  readonly policyPrefix?: string;
  /**
   * IAM path of the roles tvm may assume (in any account that trusts it).
   * (`ProtectedRolePath`; default: '/tvm/')
   */
  readonly protectedRolePath?: string;
  /**
   * Path and name of the revoker role in every account (infra/cloudformation/tvm-
   * account.yaml creates it); tvm writes revocation policies through it. (`RevokerRole`;
   * default: '/tvm/tvm-revoker')
   */
  readonly revokerRole?: string;
  /**
   * Path and name of the customer-managed revocation policy in every account (attached to
   * every protected role). (`RevocationPolicy`; default: '/tvm/tvm-revocations')
   */
  readonly revocationPolicy?: string;
  /**
   * Accounts every revocation is also written to besides those of the profiles' roles (where
   * chained sessions may land); comma-separated. (`RevocationAccounts`; default: '')
   */
  readonly revocationAccounts?: string[];
  /**
   * Comma-separated account ids whose callers may be evaluated at all (empty = the deploying
   * account only). (`AllowedAccounts`; default: '')
   */
  readonly allowedAccounts?: string[];
  /**
   * Comma-separated AWS Organizations ids whose callers may be evaluated (empty = any).
   * (`AllowedOrgIds`; default: '')
   */
  readonly allowedOrgIds?: string[];
  /**
   * Comma-separated ARN globs of the security team (TVM_ADMIN_PRINCIPALS), each naming its
   * 12-digit account; they list and revoke any session and revoke callers. Empty = nobody.
   * (`AdminPrincipals`; default: '')
   */
  readonly adminPrincipals?: string[];
  /**
   * Identity sources (TVM_IDENTITY_MODES). apigw = API Gateway's IAM authorization (and an
   * HTTP API JWT authorizer's claims); sts = a presigned GetCallerIdentity in X-Tvm-Identity
   * (for a function URL or a front without IAM auth; needs ServerId); jwt = Authorization
   * Bearer tokens of JwtIssuers, verified by tvm (needs JwtIssuers and JwtAudiences).
   * (`IdentityModes`; default: 'apigw')
   */
  readonly identityModes?: "apigw" | "sts" | "apigw,sts" | "jwt" | "apigw,jwt" | "sts,jwt" | "apigw,sts,jwt";
  /**
   * OIDC issuers whose tokens name callers (TVM_JWT_ISSUERS), comma-separated, exactly as
   * their tokens' iss (https; http only to loopback). For the jwt mode and for an HTTP API
   * JWT authorizer alike. (`JwtIssuers`; default: '')
   */
  readonly jwtIssuers?: string[];
  /**
   * Audiences (client ids) a token must be for (TVM_JWT_AUDIENCES), comma-separated;
   * required by the jwt mode. (`JwtAudiences`; default: '')
   */
  readonly jwtAudiences?: string[];
  /**
   * How old an issuer's keys may be and still verify tokens while every refresh fails
   * (TVM_JWKS_MAX_AGE_SECONDS); then tokens are refused (503). (`JwksMaxAgeSeconds`;
   * default: 3600)
   */
  readonly jwksMaxAgeSeconds?: number;
  /**
   * The ARN of the KMS asymmetric key (ECC_NIST_P256 or RSA, SIGN_VERIFY) that signs policy
   * documents (TVM_POLICY_SIGNING_KEY; tvm policy sign). Every document must then carry a
   * signature that verifies, or it is refused. Empty = documents are not verified.
   * (`PolicySigningKey`; default: '')
   */
  readonly policySigningKey?: string;
  /**
   * Absolute path, inside the function (a layer's files are under /opt), of a PEM file of CA
   * certificates to trust besides the compiled-in roots (TVM_CA_BUNDLE; Amazon Trust Services
   * for AWS endpoints, Mozilla for OIDC issuers). Empty = the compiled-in roots only; the
   * system's store is not read. (`CaBundle`; default: '')
   */
  readonly caBundle?: string;
  /**
   * The x-tvm-server-id a presigned identity must be signed with (TVM_SERVER_ID); required
   * by the sts identity mode, at least 8 characters. (`ServerId`; default: '')
   */
  readonly serverId?: string;
  /**
   * Vends per caller and profile (REQUESTS/SECONDS) for profiles without their own limit
   * (TVM_RATE_LIMIT). (`RateLimit`; default: '60/60')
   */
  readonly rateLimit?: string;
  /**
   * How old the in-memory policy set may get before a background refresh
   * (TVM_POLICY_TTL_SECONDS). (`PolicyTtlSeconds`; default: 30)
   */
  readonly policyTtlSeconds?: number;
  /**
   * After this long without a successful refresh the function fails closed
   * (TVM_POLICY_MAX_STALE_SECONDS, 2..86400); empty = the code's default, max(300, 2 x
   * PolicyTtlSeconds). (`PolicyMaxStaleSeconds`; default: '')
   */
  readonly policyMaxStaleSeconds?: string;
  /**
   * Upper bound of one AWS operation, retries included (TVM_AWS_TIMEOUT_MS). Keep
   * FunctionTimeout above a few of them. (`AwsTimeoutMs`; default: 3000)
   */
  readonly awsTimeoutMs?: number;
  /**
   * Function memory in MB (docs/deploy.md has the measurements behind the default).
   * (`FunctionMemory`; default: 128)
   */
  readonly functionMemory?: number;
  /**
   * Function timeout in seconds. (`FunctionTimeout`; default: 10)
   */
  readonly functionTimeout?: number;
  /**
   * AWS X-Ray tracing of the function (Active adds the X-Ray write permission). (`Tracing`;
   * default: 'PassThrough')
   */
  readonly tracing?: "Active" | "PassThrough";
  /**
   * Also serve a Lambda function URL without IAM auth in front (callers prove identity with
   * a presigned GetCallerIdentity); requires the sts identity mode. (An AWS_IAM URL would
   * need SigV4 for the lambda service, which tvm's client does not sign.) (`FunctionUrl`;
   * default: 'false')
   */
  readonly functionUrl?: boolean;
  /**
   * DynamoDB deletion protection on the three tables (they are also retained when the stack
   * is deleted). (`TableDeletionProtection`; default: 'true')
   */
  readonly tableDeletionProtection?: boolean;
  /**
   * An email address subscribed to the alarm topic (confirm the subscription mail). Empty =
   * none. (`AlarmEmail`; default: '')
   */
  readonly alarmEmail?: string;
  /**
   * An email address subscribed to the notification topic (approvals, break-glass,
   * revocations). Empty = none. (`NotificationEmail`; default: '')
   */
  readonly notificationEmail?: string;
  /**
   * An HTTPS endpoint subscribed to the notification topic. Empty = none.
   * (`NotificationHttpsUrl`; default: '')
   */
  readonly notificationHttpsUrl?: string;
  /**
   * Browser origins allowed to call tvm (TVM_CORS_ORIGINS), comma-separated exact origins
   * such as https://app.example.com (http:// only to 127.0.0.1 or localhost); empty = no
   * CORS. Sets the HTTP API's (and the function URL's) CORS configuration too.
   * (`CorsOrigins`; default: '')
   */
  readonly corsOrigins?: string[];
  /**
   *  (`LogLevel`; default: 'info')
   */
  readonly logLevel?: "error" | "warn" | "info" | "debug";
  /**
   *  (`LogRetentionDays`; default: 365)
   */
  readonly logRetentionDays?: number;
  /**
   * Create an SNS topic for approval, break-glass and revocation events.
   * (`EnableNotifications`; default: 'true')
   */
  readonly enableNotifications?: boolean;
}

/** Template parameter names, by prop name. */
const PARAMETERS: Record<string, string> = {
  policyPrefix: "PolicyPrefix",
  protectedRolePath: "ProtectedRolePath",
  revokerRole: "RevokerRole",
  revocationPolicy: "RevocationPolicy",
  revocationAccounts: "RevocationAccounts",
  allowedAccounts: "AllowedAccounts",
  allowedOrgIds: "AllowedOrgIds",
  adminPrincipals: "AdminPrincipals",
  identityModes: "IdentityModes",
  jwtIssuers: "JwtIssuers",
  jwtAudiences: "JwtAudiences",
  jwksMaxAgeSeconds: "JwksMaxAgeSeconds",
  policySigningKey: "PolicySigningKey",
  caBundle: "CaBundle",
  serverId: "ServerId",
  rateLimit: "RateLimit",
  policyTtlSeconds: "PolicyTtlSeconds",
  policyMaxStaleSeconds: "PolicyMaxStaleSeconds",
  awsTimeoutMs: "AwsTimeoutMs",
  functionMemory: "FunctionMemory",
  functionTimeout: "FunctionTimeout",
  tracing: "Tracing",
  functionUrl: "FunctionUrl",
  tableDeletionProtection: "TableDeletionProtection",
  alarmEmail: "AlarmEmail",
  notificationEmail: "NotificationEmail",
  notificationHttpsUrl: "NotificationHttpsUrl",
  corsOrigins: "CorsOrigins",
  logLevel: "LogLevel",
  logRetentionDays: "LogRetentionDays",
  enableNotifications: "EnableNotifications",
};

function parameterValue(value: unknown): string | number {
  if (Array.isArray(value)) {
    return value.join(",");
  }
  if (typeof value === "boolean") {
    return value ? "true" : "false";
  }
  return value as string | number;
}

/** The resources that reference `Function.Alias` (a SAM reference
 * CloudFormation include cannot resolve), with their conditions: included
 * as written, for the SAM transform to resolve at deploy. */
const AS_WRITTEN: Record<string, string> = {
  FunctionUrlConfig: "HasFunctionUrl",
  FunctionUrlPermission: "HasFunctionUrl",
  FunctionUrlInvokePermission: "HasFunctionUrl",
};

export class TokenVendingMachine extends Construct {
  /** The included template: every resource by its logical id. */
  readonly template: CfnInclude;
  readonly sessionsTable: CfnTable;
  readonly approvalsTable: CfnTable;
  readonly breakGlassTable: CfnTable;
  readonly functionRole: CfnRole;
  readonly function: CfnFunction;
  /** The API's base URL (the `Endpoint` output). */
  readonly endpoint: string;

  constructor(scope: Construct, id: string, props: TokenVendingMachineProps) {
    super(scope, id);
    this.template = new CfnInclude(this, "Template", {
      templateFile: TEMPLATE,
      dehydratedResources: Object.keys(AS_WRITTEN),
    });
    Stack.of(this).addTransform("AWS::Serverless-2016-10-31");
    // Included as written, they keep neither their logical id nor their
    // condition: both are put back.
    for (const [logicalId, condition] of Object.entries(AS_WRITTEN)) {
      const resource = this.template.getResource(logicalId);
      resource.overrideLogicalId(logicalId);
      resource.cfnOptions.condition = this.template.getCondition(condition);
    }
    // Each prop becomes its parameter's default: every reference to the
    // parameter (the resources included as written too) stays as SAM has it.
    for (const [prop, value] of Object.entries(props)) {
      if (prop === "code" || value === undefined) {
        continue;
      }
      const name = PARAMETERS[prop];
      if (name === undefined) {
        throw new Error(`TokenVendingMachine: unknown prop ${prop}`);
      }
      this.template.getParameter(name).default = parameterValue(value);
    }

    this.function = this.template.getResource("Function") as CfnFunction;
    if ("path" in props.code) {
      const asset = new Asset(this, "Code", { path: props.code.path });
      this.function.codeUri = { bucket: asset.s3BucketName, key: asset.s3ObjectKey };
    } else {
      this.function.codeUri = { bucket: props.code.bucket, key: props.code.key };
    }
    this.sessionsTable = this.template.getResource("SessionsTable") as CfnTable;
    this.approvalsTable = this.template.getResource("ApprovalsTable") as CfnTable;
    this.breakGlassTable = this.template.getResource("BreakGlassTable") as CfnTable;
    this.functionRole = this.template.getResource("FunctionRole") as CfnRole;
    this.endpoint = this.template.getOutput("Endpoint").value as string;
  }
}
