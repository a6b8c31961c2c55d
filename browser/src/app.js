// The browser test's page: sign in at the OIDC issuer, get AWS credentials
// from tvm with the ID token (no AWS credentials in the page), call DynamoDB
// with them, and let the SDK refresh them before they expire. Everything it
// needs comes in the page's query string; the driver calls `window.tvm.start()`
// and, after moving the page's clock on, `window.tvm.again()`.
import { DynamoDBClient, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";

const q = new URLSearchParams(location.search);
const cfg = {
  issuer: q.get("issuer"),
  audience: q.get("audience"),
  tvm: q.get("tvm"),
  aws: q.get("aws"),
  region: q.get("region") || "us-east-1",
  sub: q.get("sub"),
  profile: q.get("profile") || "browser-notes",
  table: q.get("table") || "notes",
};

// What the page saw, for the driver. Access key ids are kept so that the
// test can match the DynamoDB calls to the vend that signed them.
const result = { vends: [], errors: [] };

async function signIn() {
  const params = new URLSearchParams({ sub: cfg.sub, aud: cfg.audience, groups: "notes-users", tenant: "acme" });
  const r = await fetch(`${cfg.issuer}/token?${params}`);
  if (!r.ok) throw new Error(`sign-in: ${r.status}`);
  return (await r.json()).id_token;
}

// One vend: POST /v1/credentials with the ID token as a bearer token.
async function vend(token) {
  const started = performance.now();
  const r = await fetch(`${cfg.tvm}/v1/credentials`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ profile: cfg.profile }),
  });
  const body = await r.json();
  if (!r.ok) throw new Error(`tvm: ${r.status} ${body.code}: ${body.message}`);
  const done = performance.now();
  result.vends.push({ ms: done - started, done, session: body.SessionId, accessKeyId: body.AccessKeyId,
                      expiration: body.Expiration, pageTime: new Date().toISOString() });
  return {
    accessKeyId: body.AccessKeyId,
    secretAccessKey: body.SecretAccessKey,
    sessionToken: body.SessionToken,
    expiration: new Date(body.Expiration),
  };
}

let ddb;
const key = () => ({ user: { S: cfg.sub } });

async function step(name, body) {
  try {
    await body();
  } catch (e) {
    result.errors.push(`${name}: ${e.name}: ${e.message}`);
  }
  return result;
}

window.tvm = {
  // Sign in, vend, write and read the user's own item.
  start: () => step("start", async () => {
    const t0 = performance.now();
    const token = await signIn();
    // The SDK calls the provider when it has no credentials or when those it
    // has expire within five minutes: that is the refresh.
    ddb = new DynamoDBClient({ region: cfg.region, endpoint: cfg.aws, credentials: () => vend(token) });
    await ddb.send(new PutItemCommand({ TableName: cfg.table, Item: { ...key(), note: { S: `note of ${cfg.sub}` } } }));
    result.firstCredentialsMs = result.vends[0].done - t0;
    result.firstCallMs = performance.now() - t0;
    const got = await ddb.send(new GetItemCommand({ TableName: cfg.table, Key: key() }));
    result.note = got.Item?.note?.S;
  }),
  // Read again, later: with the credentials near expiry the SDK refreshes first.
  again: () => step("again", async () => {
    const t0 = performance.now();
    const got = await ddb.send(new GetItemCommand({ TableName: cfg.table, Key: key() }));
    result.againMs = performance.now() - t0;
    result.noteAgain = got.Item?.note?.S;
  }),
};
