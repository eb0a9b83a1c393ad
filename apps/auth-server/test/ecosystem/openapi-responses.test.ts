import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RESPONSE_SCHEMAS, type ResponseSchemaName, responseJsonSchema } from "../../src/http/openapi-responses.ts";
import { assignRole, createRole, grantEntitlement } from "../../src/libraries/authorization/index.ts";
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

  /** Valid by the documented schema, and no member the schema does not name. */
  function expectDocumented(name: ResponseSchemaName, body: Record<string, unknown>) {
    const schema = RESPONSE_SCHEMAS[name];
    const parsed = schema.safeParse(body);
    expect(parsed.success ? [] : parsed.error.issues).toEqual([]);
    const documented = Object.keys(schema.shape);
    expect(Object.keys(body).filter((key) => !documented.includes(key))).toEqual([]);
  }

  beforeAll(async () => {
    t = await buildOAuthApp();
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
  });
  afterAll(() => t.close());

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
    // Integer bounds are not zod's ±MAX_SAFE_INTEGER noise.
    expect(JSON.stringify(doc.components.schemas)).not.toContain(String(Number.MAX_SAFE_INTEGER));
  });

  it("token (code, refresh), introspection (access, refresh, inactive) and userinfo (GET, POST)", async () => {
    const { code, verifier } = await getCode(t.app, shop, cookie, {
      scope: "openid profile email offline_access roles",
    });
    const issued = await redeem(t.app, shop, code, verifier);
    expect(issued.statusCode).toBe(200);
    const tokens = issued.json();
    expect(tokens.roles).toBeUndefined(); // claims live in the tokens, not beside them
    expectDocumented("TokenResponse", tokens);

    const rotated = await refresh(t.app, shop, tokens.refresh_token);
    expect(rotated.statusCode).toBe(200);
    const next = rotated.json();
    expectDocumented("TokenResponse", next);

    const access = await post("/introspect", shop, { token: next.access_token });
    expect(access.statusCode).toBe(200);
    expect(access.json()).toMatchObject({ active: true, roles: ["editor"], entitlements: ["premium"] });
    expectDocumented("IntrospectionResponse", access.json());
    const refreshToken = await post("/introspect", shop, { token: next.refresh_token });
    expect(refreshToken.json()).toMatchObject({ active: true, token_type: "refresh_token" });
    expectDocumented("IntrospectionResponse", refreshToken.json());
    const inactive = await post("/introspect", shop, { token: tokens.refresh_token });
    expect(inactive.json()).toEqual({ active: false });
    expectDocumented("IntrospectionResponse", inactive.json());

    const get = await t.app.inject({
      method: "GET",
      url: "/userinfo",
      headers: { authorization: `Bearer ${next.access_token}` },
    });
    expect(get.statusCode).toBe(200);
    expect(get.json()).toMatchObject({ sub: userId, email: "documented@example.com", permissions: ["posts:write"] });
    expectDocumented("UserInfoResponse", get.json());
    const viaPost = await t.app.inject({
      method: "POST",
      url: "/userinfo",
      headers: FORM,
      payload: form({ access_token: next.access_token }),
    });
    expect(viaPost.statusCode).toBe(200);
    expectDocumented("UserInfoResponse", viaPost.json());
  });

  it("client_credentials token and its introspection", async () => {
    const issued = await post("/token", server, { grant_type: "client_credentials" });
    expect(issued.statusCode).toBe(200);
    expectDocumented("TokenResponse", issued.json());
    const introspected = await post("/introspect", server, { token: issued.json().access_token });
    expect(introspected.json()).toMatchObject({ active: true, sub: server.clientId });
    expectDocumented("IntrospectionResponse", introspected.json());
  });

  it("device authorization", async () => {
    const response = await post("/device_authorization", console_, { scope: "openid offline_access" });
    expect(response.statusCode).toBe(200);
    expectDocumented("DeviceAuthorizationResponse", response.json());
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
    expectDocumented("TokenResponse", created.json());
    const upgraded = await t.app.inject({
      method: "POST",
      url: "/api/v1/guest/upgrade",
      headers: { authorization: `Bearer ${created.json().access_token}`, "content-type": "application/json" },
      payload: JSON.stringify({ email: "racer@example.com", password: PASSWORD }),
    });
    expect(upgraded.statusCode).toBe(200);
    expectDocumented("GuestUpgradeResponse", upgraded.json());
  });

  it("direct sign-in answers the token response", async () => {
    const response = await post("/api/v1/clients/sessions", shop, {
      username: "documented@example.com",
      password: PASSWORD,
      scope: "openid email",
    });
    expect(response.statusCode).toBe(200);
    expectDocumented("TokenResponse", response.json());
  });
});
