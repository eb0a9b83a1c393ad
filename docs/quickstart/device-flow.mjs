// Sign a player in on a console or TV with the device authorization grant (RFC 8628).
// Run: ISSUER=https://id.example.com CLIENT_ID=... CLIENT_SECRET=... node docs/quickstart/device-flow.mjs
// No dependencies: Node 20+ fetch. The client needs the grant types
// urn:ietf:params:oauth:grant-type:device_code (and refresh_token to stay signed in).

const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

/**
 * Starts a device authorization, shows the code (onUserCode), then polls /token until the player approves or denies
 * on their phone. Returns the token response. `sleep` is injectable so a test can drive a simulated clock.
 */
export async function deviceSignIn({
  issuer,
  clientId,
  clientSecret,
  scope = "openid profile offline_access",
  onUserCode = ({ verification_uri, user_code, verification_uri_complete }) =>
    console.log(`On your phone, open ${verification_uri} and enter ${user_code} (or ${verification_uri_complete})`),
  sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000)),
}) {
  const metadata = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  const auth = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString("base64")}`;
  const form = { "content-type": "application/x-www-form-urlencoded", authorization: auth };

  const started = await fetch(metadata.device_authorization_endpoint, {
    method: "POST",
    headers: form,
    body: new URLSearchParams({ scope }),
  });
  if (!started.ok) throw new Error(`device authorization failed: ${await started.text()}`);
  const device = await started.json();
  await onUserCode(device);

  let interval = device.interval ?? 5;
  for (;;) {
    await sleep(interval);
    const response = await fetch(metadata.token_endpoint, {
      method: "POST",
      headers: form,
      body: new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: device.device_code }),
    });
    const body = await response.json();
    if (response.ok) return body;
    if (body.error === "authorization_pending") continue;
    if (body.error === "slow_down") {
      interval += 5; // RFC 8628 3.5: wait 5 seconds longer from now on
      continue;
    }
    // access_denied (the player said no), expired_token (too late: start again), or a configuration error.
    throw Object.assign(new Error(`device sign-in ended: ${body.error}`), { error: body.error });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const tokens = await deviceSignIn({
    issuer: process.env.ISSUER,
    clientId: process.env.CLIENT_ID,
    clientSecret: process.env.CLIENT_SECRET,
  });
  console.log(`Signed in. Access token expires in ${tokens.expires_in} s; keep the refresh token safely.`);
}
