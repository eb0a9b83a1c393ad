import { randomInt } from "node:crypto";
import type { AppContext } from "../../context.ts";
import { AppError, OAuthError } from "../../errors/index.ts";
import {
  consumeDeviceCode,
  decideDeviceCode,
  findDeviceCodeByHash,
  findPendingByUserCode,
  insertDeviceCode,
  recordPoll,
  slowDown,
} from "../../queries/device.ts";
import { findUserById } from "../../queries/users.ts";
import { audit, type RequestMeta } from "../audit.ts";
import type { ClientRow } from "../clients/index.ts";
import { addSeconds } from "../clock.ts";
import { randomToken, sha256 } from "../crypto.ts";
import { type SessionRow, signIn, type UserRow } from "../sessions.ts";
import { recordSignInFailure } from "../throttle/failures.ts";
import { accountLockedError, checkSignIn, oneAtATime } from "../throttle/gate.ts";
import { accountKey } from "../throttle/keys.ts";
import { bindRefreshChain } from "./dpop.ts";
import { splitScope } from "./params.ts";
import { checkScope } from "./scopes.ts";
import { createRefreshToken, type Grant, type TokenResponse, tokenResponse } from "./tokens.ts";

/** RFC 8628 device authorization grant: consoles and TVs sign in by showing a short code the user enters on /device. */

export const DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
/** The verification page (RFC 8628 3.2 `verification_uri`). */
export const DEVICE_PAGE = "/device";

/**
 * RFC 8628 6.1: consonants only (no vowels, so no words; no 0/O or 1/I to mix up), upper case, 8 of them shown as
 * XXXX-XXXX: 20^8 ≈ 2^34.6 codes. Low entropy on purpose (a person types it on a phone); it lives minutes, works
 * once, and guesses are throttled per user and per IP (`lookUpUserCode`).
 */
const USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LENGTH = 8;
const USER_CODE = new RegExp(`^[${USER_CODE_ALPHABET}]{${USER_CODE_LENGTH}}$`);
/** Device codes: `tsd_` + 256 bits, SHA-256 stored, like every other Tessera secret. */
const DEVICE_CODE_PREFIX = "tsd_";
const MAX_DEVICE_CODE_LENGTH = 512;

function newUserCode(): string {
  let code = "";
  for (let i = 0; i < USER_CODE_LENGTH; i++) code += USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)];
  return code;
}

/** `XXXX-XXXX`, as shown to the user. */
export const formatUserCode = (code: string) => `${code.slice(0, 4)}-${code.slice(4)}`;

/** The code as typed, in its stored form: case, dashes and spaces do not matter (RFC 8628 6.1). Null when malformed. */
export function normalizeUserCode(input: string | undefined): string | null {
  if (!input || input.length > 64) return null;
  const code = input.toUpperCase().replace(/[\s-]/g, "");
  return USER_CODE.test(code) ? code : null;
}

export interface DeviceAuthorizationResponse {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_in: number;
  interval: number;
}

/**
 * RFC 8628 3.1/3.2: a new device authorization for an authenticated client allowed the device grant. The scope is
 * checked like at /authorize (openid required, each value allowed for the client); absent, it is `openid`.
 */
export async function startDeviceAuthorization(
  ctx: AppContext,
  client: ClientRow,
  scope: string | undefined,
): Promise<DeviceAuthorizationResponse> {
  const scopes = checkScope(client, scope ?? "openid");
  const now = ctx.clock.now();
  const { deviceCodeTtlSeconds: ttl, devicePollIntervalSeconds: interval } = ctx.config.grants;
  const deviceCode = randomToken(DEVICE_CODE_PREFIX);
  // A user code colliding with a stored one (expired ones too, until swept) is drawn again.
  for (let attempt = 0; attempt < 5; attempt++) {
    const userCode = newUserCode();
    const row = await insertDeviceCode(ctx.db, {
      deviceCodeHash: sha256(deviceCode),
      userCodeHash: sha256(userCode),
      clientId: client.id,
      scope: scopes.join(" "),
      intervalSeconds: interval,
      createdAt: now,
      expiresAt: addSeconds(now, ttl),
    });
    if (!row) continue;
    const page = `${ctx.config.issuer}${DEVICE_PAGE}`;
    return {
      device_code: deviceCode,
      user_code: formatUserCode(userCode),
      verification_uri: page,
      verification_uri_complete: `${page}?user_code=${formatUserCode(userCode)}`,
      expires_in: ttl,
      interval,
    };
  }
  throw new AppError("INTERNAL_ERROR", "Could not draw a unique user code.");
}

/** What the approval page shows: the app's name and the scopes it asks for. */
export interface DeviceRequestView {
  userCode: string;
  clientName: string;
  scopes: string[];
}

/**
 * The pending request a user code names, for the signed-in user at /device. Wrong codes are failed sign-in attempts
 * of the project's throttle (libraries/throttle): counted per user (own key) and per IP, with growing delays, a
 * time-limited lock and IP suspension; checked one at a time per user so a parallel burst cannot outrun the count.
 * A right code does not clear the count (anyone can mint right codes for their own device).
 */
export async function lookUpUserCode(
  ctx: AppContext,
  input: string | undefined,
  user: UserRow,
  meta: RequestMeta,
): Promise<DeviceRequestView & { id: string }> {
  const key = userCodeThrottleKey(ctx, user.id);
  return oneAtATime(key, async () => {
    const gate = await checkSignIn(ctx, meta, { key, userId: user.id });
    if (gate.accountLocked)
      throw accountLockedError(addSeconds(ctx.clock.now(), gate.retryAfterSeconds), ctx.clock.now());
    const code = normalizeUserCode(input);
    const found = code ? await findPendingByUserCode(ctx.db, sha256(code), ctx.clock.now()) : null;
    if (!code || !found || found.clientDisabledAt) {
      await recordSignInFailure(ctx, meta, { key, userId: user.id, reason: "user_code" });
      await audit(ctx.db, meta, { event: "device.user_code_rejected", outcome: "failure", userId: user.id });
      throw new AppError("USER_CODE_INVALID");
    }
    return {
      id: found.code.id,
      userCode: formatUserCode(code),
      clientName: found.clientName,
      scopes: splitScope(found.code.scope),
    };
  });
}

function userCodeThrottleKey(ctx: AppContext, userId: string): string {
  return `device:${accountKey(ctx.config, `user:${userId}`)}`;
}

/** Approves or denies the request a user code names (looked up, and throttled, again). Single use. */
export async function decideUserCode(
  ctx: AppContext,
  input: string | undefined,
  decision: "approve" | "deny",
  current: { user: UserRow; session: SessionRow },
  meta: RequestMeta,
): Promise<DeviceRequestView> {
  const request = await lookUpUserCode(ctx, input, current.user, meta);
  const now = ctx.clock.now();
  const status = decision === "approve" ? "approved" : "denied";
  await ctx.db.transaction(async (tx) => {
    const decided = await decideDeviceCode(tx, request.id, {
      status,
      userId: current.user.id,
      sessionId: current.session.id,
      amr: current.session.amr,
      now,
    });
    if (!decided) throw new AppError("USER_CODE_INVALID");
    await audit(tx, meta, {
      event: `device.${status}`,
      outcome: "success",
      userId: current.user.id,
      sessionId: current.session.id,
      details: { deviceAuthorizationId: request.id },
    });
  });
  return request;
}

type Outcome = { ok: true; grant: Grant; refreshToken: string } | { ok: false; error: OAuthError };
const fail = (error: OAuthError["error"], description: string): Outcome => ({
  ok: false,
  error: new OAuthError(error, description, 400),
});

/**
 * RFC 8628 3.4/3.5, the device polling /token. In order: the code exists and belongs to this client (else
 * invalid_grant: another client's device code is refused like an unknown one), not expired (expired_token), polled no
 * faster than its interval (slow_down, which raises the interval by 5 s), then by state: pending →
 * authorization_pending, denied → access_denied, consumed → invalid_grant, approved → tokens, once.
 *
 * The device gets a session of its own (the console is another device than the phone that approved), carrying the
 * approving session's `amr`; its refresh token lives and ends with that session, like any other.
 */
export async function deviceCodeGrant(
  ctx: AppContext,
  client: ClientRow,
  deviceCode: string | undefined,
  meta: RequestMeta,
  /** The DPoP key thumbprint of the polling request's proof: the tokens are bound to it (RFC 9449 5). */
  dpopJkt: string | null = null,
): Promise<TokenResponse> {
  if (!deviceCode) throw new OAuthError("invalid_request", "The device_code parameter is required.");
  const unknown = "The device code is invalid.";
  if (deviceCode.length > MAX_DEVICE_CODE_LENGTH) throw new OAuthError("invalid_grant", unknown);
  const now = ctx.clock.now();
  const found = await findDeviceCodeByHash(ctx.db, sha256(deviceCode));
  if (!found) throw new OAuthError("invalid_grant", unknown);
  if (found.clientId !== client.id) {
    await audit(ctx.db, meta, {
      event: "device.code_wrong_client",
      outcome: "failure",
      clientId: client.clientId,
      details: { deviceAuthorizationId: found.id },
    });
    throw new OAuthError("invalid_grant", unknown);
  }
  if (found.expiresAt <= now) throw new OAuthError("expired_token", "The device code has expired; start again.", 400);
  if (!(await recordPoll(ctx.db, found.id, now))) {
    await slowDown(ctx.db, found.id, now);
    throw new OAuthError("slow_down", `Poll no more often than every ${found.intervalSeconds + 5} seconds.`, 400);
  }
  if (found.status === "pending") throw new OAuthError("authorization_pending", "The user has not decided yet.", 400);
  if (found.status === "denied") throw new OAuthError("access_denied", "The user denied the request.", 400);
  if (found.status === "consumed") throw new OAuthError("invalid_grant", "The device code has already been used.");

  const outcome = await ctx.db.transaction(async (tx): Promise<Outcome> => {
    const consumed = await consumeDeviceCode(tx, found.id, now);
    if (!consumed?.userId) return fail("invalid_grant", "The device code has already been used.");
    const user = await findUserById(tx, consumed.userId);
    if (!user || user.disabledAt || user.deletedAt) return fail("invalid_grant", "The user account is disabled.");
    const { session } = await signIn(ctx, tx, { userId: user.id, amr: consumed.amr ?? ["pwd"], meta });
    const grant: Grant = { client, user, session, scopes: splitScope(consumed.scope), dpopJkt };
    const { token } = await createRefreshToken(tx, { grant, now });
    if (dpopJkt) await bindRefreshChain(tx, token, dpopJkt, now);
    await audit(tx, meta, {
      event: "device.tokens_issued",
      outcome: "success",
      userId: user.id,
      clientId: client.clientId,
      sessionId: session.id,
    });
    return { ok: true, grant, refreshToken: token };
  });
  if (!outcome.ok) throw outcome.error;
  return tokenResponse(ctx, outcome.grant, outcome.refreshToken);
}
