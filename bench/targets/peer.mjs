// Benchmark peer: node-oidc-provider v9 (npm `oidc-provider`) with its default in-memory adapter (or, with
// BENCH_PEER_DATABASE_URL, a PostgreSQL adapter of its own, below), refresh-token
// rotation on, one confidential client (client_secret_basic), an RS256 signing key like Tessera's default, and
// introspection on. Tokens are minted through the provider's own models (Grant, RefreshToken, AccessToken) before
// anything is timed, since the interactive sign-in is not what is compared. Prints one JSON line, then serves until
// killed; answers "cpu", "rss" and "chains N" over IPC like bench/targets/tessera.ts.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import Provider from "oidc-provider";

const CLIENT_ID = "bench-peer";
const CLIENT_SECRET = randomBytes(32).toString("base64url");
const ACCOUNT = "0b7a7c38-5f0e-4a55-9c55-6f5f3c1f0d11";
const SCOPE = "openid profile email offline_access";

// BENCH_SIGNING_ALG=ES256 signs ID tokens with P-256 instead (as the Tessera target then does).
const ALG = process.env.BENCH_SIGNING_ALG === "ES256" ? "ES256" : "RS256";
const { privateKey } =
  ALG === "ES256"
    ? generateKeyPairSync("ec", { namedCurve: "P-256" })
    : generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: "jwk" }), kid: "bench", alg: ALG, use: "sig" };

/**
 * With BENCH_PEER_DATABASE_URL the provider keeps its models in PostgreSQL instead of memory: one table, the model's
 * payload as jsonb, through postgres.js (Tessera's driver) with Tessera's default pool size, every call one prepared
 * statement. The adapter interface is node-oidc-provider's (lib/adapters/memory_adapter.js is its reference); this
 * is the straightforward PostgreSQL form of it, as the contributed adapters do it — not tuned for the bench.
 */
async function postgresAdapter(url) {
  const postgres = createRequire(new URL("../../packages/db/package.json", import.meta.url))("postgres");
  const sql = postgres(url, { max: 10, onnotice: () => {} });
  await sql`create table if not exists oidc_bench_models (
    model text not null, id text not null, payload jsonb not null, grant_id text, user_code text, uid text,
    expires_at timestamptz, consumed_at timestamptz, primary key (model, id))`;
  await sql`create index if not exists oidc_bench_models_grant_id on oidc_bench_models (grant_id)`;
  await sql`create index if not exists oidc_bench_models_uid on oidc_bench_models (uid)`;
  await sql`create index if not exists oidc_bench_models_user_code on oidc_bench_models (user_code)`;
  const live = (row) =>
    row && (!row.expires_at || row.expires_at > new Date())
      ? { ...row.payload, ...(row.consumed_at ? { consumed: Math.floor(row.consumed_at.getTime() / 1000) } : {}) }
      : undefined;
  return (model) => ({
    async upsert(id, payload, expiresIn) {
      const expiresAt = typeof expiresIn === "number" ? new Date(Date.now() + expiresIn * 1000) : null;
      await sql`insert into oidc_bench_models (model, id, payload, grant_id, user_code, uid, expires_at)
        values (${model}, ${id}, ${sql.json(payload)}, ${payload.grantId ?? null}, ${payload.userCode ?? null},
                ${payload.uid ?? null}, ${expiresAt})
        on conflict (model, id) do update set payload = excluded.payload, grant_id = excluded.grant_id,
          user_code = excluded.user_code, uid = excluded.uid, expires_at = excluded.expires_at`;
    },
    async find(id) {
      const [row] = await sql`select payload, expires_at, consumed_at from oidc_bench_models
        where model = ${model} and id = ${id}`;
      return live(row);
    },
    async findByUid(uid) {
      const [row] = await sql`select payload, expires_at, consumed_at from oidc_bench_models
        where model = ${model} and uid = ${uid}`;
      return live(row);
    },
    async findByUserCode(userCode) {
      const [row] = await sql`select payload, expires_at, consumed_at from oidc_bench_models
        where model = ${model} and user_code = ${userCode}`;
      return live(row);
    },
    async consume(id) {
      await sql`update oidc_bench_models set consumed_at = now() where model = ${model} and id = ${id}`;
    },
    async destroy(id) {
      await sql`delete from oidc_bench_models where model = ${model} and id = ${id}`;
    },
    async revokeByGrantId(grantId) {
      await sql`delete from oidc_bench_models where grant_id = ${grantId}`;
    },
  });
}
const adapter = process.env.BENCH_PEER_DATABASE_URL
  ? await postgresAdapter(process.env.BENCH_PEER_DATABASE_URL)
  : undefined;

const provider = new Provider("http://127.0.0.1", {
  ...(adapter ? { adapter } : {}),
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: ["https://bench.example/cb"],
      grant_types: ["authorization_code", "refresh_token"],
      token_endpoint_auth_method: "client_secret_basic",
      id_token_signed_response_alg: ALG,
    },
  ],
  jwks: { keys: [jwk] },
  scopes: ["openid", "offline_access", "profile", "email"],
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
  features: { introspection: { enabled: true }, devInteractions: { enabled: false } },
  enabledJWA: { idTokenSigningAlgValues: ["RS256", "ES256"] },
  rotateRefreshToken: true,
  findAccount: (_ctx, id) => ({
    accountId: id,
    claims: () => ({ sub: id, email: "bench@example.com", email_verified: true, name: "Bench" }),
  }),
});
provider.on("server_error", (_ctx, error) => process.stderr.write(`peer server_error: ${error.stack}\n`));

const client = await provider.Client.find(CLIENT_ID);

async function newGrant() {
  const grant = new provider.Grant({ accountId: ACCOUNT, clientId: CLIENT_ID });
  grant.addOIDCScope(SCOPE);
  return grant.save();
}

async function newChain() {
  const grantId = await newGrant();
  const token = new provider.RefreshToken({
    client,
    accountId: ACCOUNT,
    grantId,
    scope: SCOPE,
    gty: "authorization_code",
    authTime: Math.floor(Date.now() / 1000),
    expiresWithSession: false,
  });
  return token.save();
}

async function newAccessToken() {
  const grantId = await newGrant();
  const token = new provider.AccessToken({ client, accountId: ACCOUNT, grantId, scope: "openid profile email" });
  return token.save();
}

const server = provider.listen(0, "127.0.0.1");
await new Promise((resolve) => server.once("listening", resolve));
process.stdout.write(
  `${JSON.stringify({
    port: server.address().port,
    basic: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString("base64")}`,
    accessToken: await newAccessToken(),
    paths: { introspect: "/token/introspection", userinfo: "/me" },
  })}\n`,
);

process.on("message", async (message) => {
  if (message === "cpu") process.send({ cpu: process.cpuUsage() });
  else if (message === "rss") process.send({ rss: process.memoryUsage().rss });
  else if (message === "access") process.send({ accessToken: await newAccessToken() });
  else if (message.startsWith("chains ")) {
    const chains = [];
    for (let i = 0; i < Number(message.slice(7)); i++) chains.push(await newChain());
    process.send({ chains });
  }
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
