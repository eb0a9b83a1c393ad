import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RESPONSE_SCHEMAS, type ResponseSchemaName, responseJsonSchema } from "../../src/http/openapi-responses.ts";
import { assignRole, createRole, grantEntitlement } from "../../src/libraries/authorization/index.ts";
import { OutboxMailer } from "../../src/libraries/mailer/index.ts";
import { currentCode } from "../../src/libraries/mfa/factor.ts";
import { CLIENT_AUTH_PARAMS, TOKEN_PARAMS } from "../../src/libraries/oauth/form-params.ts";
import { Browser, linkFrom, tokenFrom } from "../accounts/helpers.ts";
import { bodyProblems } from "../contract.ts";
import { DEVICE_GRANT } from "../grants/helpers.ts";
import type { TestApp } from "../helpers.ts";
import {
  basic,
  buildOAuthApp,
  createUser,
  FORM,
  form,
  getCode,
  redeem,
  refresh,
  registerClient,
  sessionCookie,
  type TestClient,
} from "../oauth/helpers.ts";

const PASSWORD = "correct horse battery staple";

/**
 * The success bodies /openapi.json documents (src/http/openapi-responses.ts) against what the endpoints answer: every
 * body validates, and every member of it is documented, so a field added to a response without the document fails
 * here. Each is a real flow through inject(), the widest body each endpoint gives (roles scope, DPoP-less).
 */
describe("documented success bodies", () => {
  let t: TestApp;
  let shop: TestClient;
  let server: TestClient;
  let console_: TestClient;
  let game: TestClient;
  let cookie: string;
  let userId: string;

  /** Valid by the documented schema, and no member (at any depth) the schema does not name. */
  function expectDocumented(name: ResponseSchemaName, body: Record<string, unknown>) {
    expect(bodyProblems(RESPONSE_SCHEMAS[name], body)).toEqual([]);
  }

  let doc: {
    paths: Record<
      string,
      Record<string, { responses: Record<string, { content?: Record<string, { schema: { $ref: string } }> }> }>
    >;
  };

  /**
   * The answer is one the document gives for this operation: a success status it lists, and the body its schema
   * names (none for a status without content).
   */
  function expectAsDocumented(method: string, path: string, response: LightMyRequestResponse) {
    const documented = doc.paths[path]?.[method.toLowerCase()]?.responses ?? {};
    const successes = Object.keys(documented).filter((status) => Number(status) < 400);
    expect(successes, `${method} ${path} answered ${response.statusCode}: ${response.body.slice(0, 200)}`).toContain(
      String(response.statusCode),
    );
    const ref = documented[String(response.statusCode)]?.content?.["application/json"]?.schema.$ref;
    if (ref) expectDocumented(ref.replace("#/components/schemas/", "") as ResponseSchemaName, response.json());
    else expect(response.body).toBe("");
  }

  beforeAll(async () => {
    t = await buildOAuthApp({ ACCOUNT_RESPONSE_FLOOR_MS: "0" });
    shop = await registerClient(t.app, { name: "Shop", directSignIn: true });
    server = await registerClient(t.app, {
      name: "Game Server",
      grantTypes: ["client_credentials"],
      allowedScopes: ["openid", "offline_access", "leaderboard:write"],
    });
    console_ = await registerClient(t.app, { name: "Console", grantTypes: [DEVICE_GRANT, "refresh_token"] });
    game = await registerClient(t.app, { name: "Tiny Racer", guestAccounts: true });
    const user = await createUser(t.app, { email: "documented@example.com", password: PASSWORD });
    userId = user.id;
    const actor = { actorId: null, meta: { ip: undefined, userAgent: "vitest" }, via: "test" };
    const role = await createRole(t.app.ctx, shop.clientId, { name: "editor", permissions: ["posts:write"] }, actor);
    await assignRole(t.app.ctx, user.id, { roleId: role.id }, actor);
    await grantEntitlement(t.app.ctx, user.id, { name: "premium" }, actor);
    ({ cookie } = await sessionCookie(t.app, user));
    doc = (await t.app.inject({ method: "GET", url: "/openapi.json" })).json();
  });
  afterAll(() => t.close());

  const outbox = () => {
    const mailer = t.app.ctx.mailer;
    if (!(mailer instanceof OutboxMailer)) throw new Error("expected the outbox mailer in tests");
    return mailer;
  };

  const post = (url: string, client: TestClient, fields: Record<string, string>) =>
    t.app.inject({
      method: "POST",
      url,
      headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
      payload: form(fields),
    });

  it("/openapi.json names each of them as the success body of its operations", async () => {
    const doc = (await t.app.inject({ method: "GET", url: "/openapi.json" })).json();
    for (const name of Object.keys(RESPONSE_SCHEMAS) as ResponseSchemaName[]) {
      expect(doc.components.schemas[name]).toEqual(responseJsonSchema(name));
    }
    const body = (path: string, method: string, status: string) =>
      doc.paths[path][method].responses[status].content["application/json"].schema.$ref;
    expect(body("/token", "post", "200")).toBe("#/components/schemas/TokenResponse");
    expect(body("/introspect", "post", "200")).toBe("#/components/schemas/IntrospectionResponse");
    expect(body("/userinfo", "get", "200")).toBe("#/components/schemas/UserInfoResponse");
    expect(body("/userinfo", "post", "200")).toBe("#/components/schemas/UserInfoResponse");
    expect(body("/device_authorization", "post", "200")).toBe("#/components/schemas/DeviceAuthorizationResponse");
    // 200 as /token answers it (the document said 201 until this test compared it with the endpoint).
    expect(body("/api/v1/guest", "post", "200")).toBe("#/components/schemas/TokenResponse");
    expect(body("/api/v1/guest/upgrade", "post", "200")).toBe("#/components/schemas/GuestUpgradeResponse");
    expect(body("/api/v1/clients/sessions", "post", "200")).toBe("#/components/schemas/TokenResponse");
    expect(doc.paths["/jwks"].get.responses["200"].content["application/jwk-set+json"].schema.$ref).toBe(
      "#/components/schemas/Jwks",
    );
    expect(body("/admin/api/v1/clients", "post", "201")).toBe("#/components/schemas/Client");
    expect(body("/admin/api/v1/users/{id}", "get", "200")).toBe("#/components/schemas/AdminUserProfile");
    expect(body("/api/v1/me/export", "get", "200")).toBe("#/components/schemas/DataExport");
    // Integer bounds are not zod's ±MAX_SAFE_INTEGER noise.
    expect(JSON.stringify(doc.components.schemas)).not.toContain(String(Number.MAX_SAFE_INTEGER));
  });

  it("OAuth form bodies list the parameters the endpoints read, from the same specs (libraries/oauth/form-params.ts)", () => {
    type FormBody = {
      required: boolean;
      content: Record<
        string,
        {
          schema: { properties: Record<string, { maxLength: number; enum?: string[] }>; required?: string[] };
        }
      >;
    };
    const form = (path: string) =>
      (doc.paths[path]?.post as unknown as { requestBody: FormBody } | undefined)?.requestBody as FormBody;
    const token = form("/token");
    expect(token.required).toBe(true);
    const schema = token.content["application/x-www-form-urlencoded"]?.schema;
    expect(Object.keys(schema?.properties ?? {}).sort()).toEqual(
      [...Object.keys(TOKEN_PARAMS), ...Object.keys(CLIENT_AUTH_PARAMS)].sort(),
    );
    expect(schema?.required).toEqual(["grant_type"]);
    expect(schema?.properties.grant_type?.enum).toContain("urn:ietf:params:oauth:grant-type:device_code");
    expect(schema?.properties.token).toBeUndefined();
    expect(form("/revoke").content["application/x-www-form-urlencoded"]?.schema.required).toEqual(["token"]);
    // The token may come in the Authorization header instead (RFC 6750 2.2).
    expect(form("/userinfo").required).toBe(false);
  });

  it("token (code, refresh), introspection (access, refresh, inactive) and userinfo (GET, POST)", async () => {
    const { code, verifier } = await getCode(t.app, shop, cookie, {
      scope: "openid profile email offline_access roles",
    });
    const issued = await redeem(t.app, shop, code, verifier);
    expect(issued.statusCode).toBe(200);
    const tokens = issued.json();
    expect(tokens.roles).toBeUndefined(); // claims live in the tokens, not beside them
    expectAsDocumented("POST", "/token", issued);

    const rotated = await refresh(t.app, shop, tokens.refresh_token);
    expect(rotated.statusCode).toBe(200);
    const next = rotated.json();
    expectAsDocumented("POST", "/token", rotated);

    const access = await post("/introspect", shop, { token: next.access_token });
    expect(access.statusCode).toBe(200);
    expect(access.json()).toMatchObject({ active: true, roles: ["editor"], entitlements: ["premium"] });
    expectAsDocumented("POST", "/introspect", access);
    const refreshToken = await post("/introspect", shop, { token: next.refresh_token });
    expect(refreshToken.json()).toMatchObject({ active: true, token_type: "refresh_token" });
    expectAsDocumented("POST", "/introspect", refreshToken);
    const inactive = await post("/introspect", shop, { token: tokens.refresh_token });
    expect(inactive.json()).toEqual({ active: false });
    expectAsDocumented("POST", "/introspect", inactive);

    const get = await t.app.inject({
      method: "GET",
      url: "/userinfo",
      headers: { authorization: `Bearer ${next.access_token}` },
    });
    expect(get.statusCode).toBe(200);
    expect(get.json()).toMatchObject({ sub: userId, email: "documented@example.com", permissions: ["posts:write"] });
    expectAsDocumented("GET", "/userinfo", get);
    const viaPost = await t.app.inject({
      method: "POST",
      url: "/userinfo",
      headers: FORM,
      payload: form({ access_token: next.access_token }),
    });
    expect(viaPost.statusCode).toBe(200);
    expectAsDocumented("POST", "/userinfo", viaPost);
  });

  it("client_credentials token and its introspection", async () => {
    const issued = await post("/token", server, { grant_type: "client_credentials" });
    expect(issued.statusCode).toBe(200);
    expectAsDocumented("POST", "/token", issued);
    const introspected = await post("/introspect", server, { token: issued.json().access_token });
    expect(introspected.json()).toMatchObject({ active: true, sub: server.clientId });
    expectAsDocumented("POST", "/introspect", introspected);
  });

  it("device authorization", async () => {
    const response = await post("/device_authorization", console_, { scope: "openid offline_access" });
    expect(response.statusCode).toBe(200);
    expectAsDocumented("POST", "/device_authorization", response);
  });

  it("guest account: created with the token response, upgraded", async () => {
    const created = await t.app.inject({
      method: "POST",
      url: "/api/v1/guest",
      headers: { authorization: basic(game.clientId, game.secret), "content-type": "application/json" },
      payload: "{}",
    });
    expect(created.statusCode).toBe(200);
    expect(created.json()).toMatchObject({ is_anonymous: true });
    expectAsDocumented("POST", "/api/v1/guest", created);
    const upgraded = await t.app.inject({
      method: "POST",
      url: "/api/v1/guest/upgrade",
      headers: { authorization: `Bearer ${created.json().access_token}`, "content-type": "application/json" },
      payload: JSON.stringify({ email: "racer@example.com", password: PASSWORD }),
    });
    expect(upgraded.statusCode).toBe(200);
    expectAsDocumented("POST", "/api/v1/guest/upgrade", upgraded);
  });

  it("direct sign-in answers the token response", async () => {
    const response = await post("/api/v1/clients/sessions", shop, {
      username: "documented@example.com",
      password: PASSWORD,
      scope: "openid email",
    });
    expect(response.statusCode).toBe(200);
    expectAsDocumented("POST", "/api/v1/clients/sessions", response);
  });
  it("account API: register, verify, sign in, profile, sessions, email change, resend, forgot password", async () => {
    const b = new Browser(t.app);
    const email = "account-doc@example.com";
    const registered = await b.json("POST", "/api/v1/register", { email, password: PASSWORD });
    expectAsDocumented("POST", "/api/v1/register", registered);
    expect(registered.statusCode).toBe(202);
    const token = tokenFrom(linkFrom(outbox(), email, "verify_email"));
    expectAsDocumented("POST", "/api/v1/verify-email", await b.json("POST", "/api/v1/verify-email", { token }));
    // Registering an address that has an account, with its password: signed in (the other documented success).
    const again = await b.json("POST", "/api/v1/register", { email, password: PASSWORD });
    expect(again.statusCode).toBe(200);
    expectAsDocumented("POST", "/api/v1/register", again);
    const phone = new Browser(t.app); // a second device: a second session
    expectAsDocumented(
      "POST",
      "/api/v1/login",
      await phone.json("POST", "/api/v1/login", { email, password: PASSWORD }),
    );
    expectAsDocumented("GET", "/api/v1/me", await b.json("GET", "/api/v1/me"));
    expectAsDocumented("PATCH", "/api/v1/me", await b.json("PATCH", "/api/v1/me", { displayName: "Doc" }));
    const sessions = await b.json("GET", "/api/v1/me/sessions");
    expect(sessions.json().sessions.length).toBe(2);
    expectAsDocumented("GET", "/api/v1/me/sessions", sessions);
    const other = sessions.json().sessions.find((s: { current: boolean }) => !s.current).id;
    expectAsDocumented(
      "POST",
      "/api/v1/me/sessions/{sessionId}/end",
      await b.json("POST", `/api/v1/me/sessions/${other}/end`, {}),
    );
    expectAsDocumented(
      "POST",
      "/api/v1/me/sessions/end-others",
      await b.json("POST", "/api/v1/me/sessions/end-others", {}),
    );
    expectAsDocumented("POST", "/api/v1/me/verification", await b.json("POST", "/api/v1/me/verification", {}));
    expectAsDocumented(
      "POST",
      "/api/v1/me/email",
      await b.json("POST", "/api/v1/me/email", { currentPassword: PASSWORD, newEmail: "moved-doc@example.com" }),
    );
    expectAsDocumented("POST", "/api/v1/forgot-password", await b.json("POST", "/api/v1/forgot-password", { email }));
    const changed = await b.json("POST", "/api/v1/me/password", {
      currentPassword: PASSWORD,
      newPassword: "another long passphrase 2",
    });
    expectAsDocumented("POST", "/api/v1/me/password", changed);
    expectAsDocumented(
      "POST",
      "/api/v1/me/delete",
      await b.json("POST", "/api/v1/me/delete", { currentPassword: "another long passphrase 2" }),
    );
  });

  it("two-step sign-in: status, authenticator set-up, recovery codes, the code step, turning it off", async () => {
    const b = new Browser(t.app);
    const email = "mfa-doc@example.com";
    await createUser(t.app, { email, password: PASSWORD });
    expect((await b.json("POST", "/api/v1/login", { email, password: PASSWORD })).statusCode).toBe(200);
    expectAsDocumented("GET", "/api/v1/mfa", await b.json("GET", "/api/v1/mfa"));
    const started = await b.json("POST", "/api/v1/mfa/totp", { password: PASSWORD });
    expectAsDocumented("POST", "/api/v1/mfa/totp", started);
    const { secret } = started.json();
    const confirmed = await b.json("POST", "/api/v1/mfa/totp/confirm", { code: currentCode(secret, t.clock.now()) });
    expectAsDocumented("POST", "/api/v1/mfa/totp/confirm", confirmed);
    /** A code of the next 30-second step: each code is accepted once. */
    const nextCode = () => {
      t.clock.advance(30);
      return currentCode(secret, t.clock.now());
    };
    const renewed = await b.json("POST", "/api/v1/mfa/recovery-codes", { code: nextCode() });
    expectAsDocumented("POST", "/api/v1/mfa/recovery-codes", renewed);

    const second = new Browser(t.app);
    expect((await second.json("POST", "/api/v1/login", { email, password: PASSWORD })).statusCode).toBe(401);
    const step = await second.json("POST", "/api/v1/login/otp", { code: nextCode() });
    expectAsDocumented("POST", "/api/v1/login/otp", step);
    expectAsDocumented(
      "POST",
      "/api/v1/mfa/totp/disable",
      await second.json("POST", "/api/v1/mfa/totp/disable", { password: PASSWORD, code: nextCode() }),
    );
  });
});
