// The browser test's page: sign in at the OIDC issuer, get AWS credentials
// from tvm with the ID token (no AWS credentials in the page), call DynamoDB
// with them, and refresh them before they expire. Everything it needs comes
// in the page's query string; what it saw is left in `window.tvmResult` for
// the driver to read.
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
  // Refresh when the credentials have less than this many seconds left.
  refreshWithin: Number(q.get("refresh_within") || "300"),
};

async function signIn() {
  const params = new URLSearchParams({ sub: cfg.sub, aud: cfg.audience, groups: "notes-users", tenant: "acme" });
  const r = await fetch(`${cfg.issuer}/token?${params}`);
  if (!r.ok) throw new Error(`sign-in: ${r.status}`);
  return (await r.json()).id_token;
}

const result = { vends: [], errors: [] };
window.tvmResult = result;

async function vend(token) {
  const started = performance.now();
  const r = await fetch(`${cfg.tvm}/v1/credentials`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ profile: cfg.profile }),
  });
  const body = await r.json();
  if (!r.ok) throw new Error(`tvm: ${r.status} ${body.code}: ${body.message}`);
  result.vends.push({ ms: performance.now() - started, session: body.SessionId, expiration: body.Expiration });
  return {
    accessKeyId: body.AccessKeyId,
    secretAccessKey: body.SecretAccessKey,
    sessionToken: body.SessionToken,
    expiration: new Date(body.Expiration),
  };
}

// A provider that refreshes ahead of expiry: the SDK calls it before each
// request; it vends again once less than `refreshWithin` seconds are left.
function provider(token) {
  let current;
  return async () => {
    if (!current || current.expiration.getTime() - Date.now() < cfg.refreshWithin * 1000) {
      current = await vend(token);
    }
    return current;
  };
}

async function main() {
  const t0 = performance.now();
  const token = await signIn();
  const ddb = new DynamoDBClient({ region: cfg.region, endpoint: cfg.aws, credentials: provider(token) });
  const key = { user: { S: cfg.sub } };
  await ddb.send(new PutItemCommand({ TableName: cfg.table, Item: { ...key, note: { S: "hello" } } }));
  result.firstCredentialsMs = result.vends[0]?.ms;
  result.firstCallMs = performance.now() - t0;
  const got = await ddb.send(new GetItemCommand({ TableName: cfg.table, Key: key }));
  result.note = got.Item?.note?.S;
  // Another user's item: the session policy must refuse it.
  try {
    await ddb.send(new GetItemCommand({ TableName: cfg.table, Key: { user: { S: `${cfg.sub}-other` } } }));
    result.otherUser = "allowed";
  } catch (e) {
    result.otherUser = e.name;
  }
  result.done = true;
}

main().catch((e) => {
  result.errors.push(String(e));
  result.done = true;
});
