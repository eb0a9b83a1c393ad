// Benchmark peer: node-oidc-provider v9 (npm `oidc-provider`) with its default in-memory adapter, refresh-token
// rotation on, one confidential client (client_secret_basic), an RS256 signing key like Tessera's default, and
// introspection on. Tokens are minted through the provider's own models (Grant, RefreshToken, AccessToken) before
// anything is timed, since the interactive sign-in is not what is compared. Prints one JSON line, then serves until
// killed; answers "cpu", "rss" and "chains N" over IPC like bench/targets/tessera.ts.
import { generateKeyPairSync, randomBytes } from "node:crypto";
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

const provider = new Provider("http://127.0.0.1", {
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
