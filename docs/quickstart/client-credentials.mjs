// A game server or back-end service gets an access token for itself (RFC 6749 4.4, client_credentials), then checks a
// token with introspection (RFC 7662).
// Run: ISSUER=https://id.example.com CLIENT_ID=... CLIENT_SECRET=... node docs/quickstart/client-credentials.mjs
// No dependencies: Node 20+ fetch. Register the client with --grant-types client_credentials and the scopes it needs.

/** Fetches a service token; cache it until shortly before `expires_in` runs out (there is no refresh token). */
export async function serviceToken({ issuer, clientId, clientSecret, scope }) {
  const metadata = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  const response = await fetch(metadata.token_endpoint, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString("base64")}`,
    },
    body: new URLSearchParams({ grant_type: "client_credentials", ...(scope ? { scope } : {}) }),
  });
  const body = await response.json();
  if (!response.ok) throw Object.assign(new Error(`client_credentials failed: ${body.error}`), { error: body.error });
  return body;
}

/** Asks Tessera whether a token (of this client) is active, and what it grants. */
export async function introspect({ issuer, clientId, clientSecret, token }) {
  const metadata = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  const response = await fetch(metadata.introspection_endpoint, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString("base64")}`,
    },
    body: new URLSearchParams({ token }),
  });
  return response.json();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const settings = {
    issuer: process.env.ISSUER,
    clientId: process.env.CLIENT_ID,
    clientSecret: process.env.CLIENT_SECRET,
  };
  const { access_token, expires_in, scope } = await serviceToken({ ...settings, scope: process.env.SCOPE });
  console.log(`Service token for "${scope}", valid ${expires_in} s`);
  console.log(await introspect({ ...settings, token: access_token }));
}
