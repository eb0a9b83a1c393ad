import type { JWTPayload } from "jose";
import type { AccessClaims } from "./access-token.ts";
import type { SdkContext } from "./context.ts";
import { TesseraError } from "./errors.ts";
import type { TokenResponse } from "./issuer.ts";

/** Tessera's `tessera_code` for a refresh token rotated moments ago by another request (its grace window). */
const CONCURRENT_ROTATION = "REFRESH_ROTATED_CONCURRENTLY";
/** Bound on remembered outcomes, so a flood of distinct refresh tokens cannot grow memory without limit. */
const MAX_REMEMBERED = 10_000;

/**
 * The outcome of presenting a refresh token to Tessera.
 * @internal
 *
 * @example
 * ```ts
 * const outcome: RefreshOutcome = await refresher.refresh(refreshToken, boundClaims); // internal
 * if (outcome.ok) setCookies(outcome.accessJwt, outcome.refreshToken);
 * ```
 */
export type RefreshOutcome =
  | { ok: true; accessJwt: string; refreshToken: string; idToken?: string }
  /**
   * `transient`: Tessera was unreachable or failed (5xx), so the refresh token was not rotated and stays usable.
   * `concurrent`: another process rotated this token moments ago (Tessera's grace window): the chain is alive and the
   * browser is receiving the successor from that process's response.
   */
  | { ok: false; transient: boolean; concurrent: boolean; error: TesseraError };

/**
 * Rotates refresh tokens at Tessera: single-flight per token (concurrent callers share one call), and the outcome is
 * reused for `refreshReuseSeconds` for requests still carrying the old token (responses still in flight in the
 * browser), instead of presenting a retired token that Tessera would take for reuse.
 * @internal
 *
 * @example
 * ```ts
 * const refresher = new Refresher(context); // internal
 * ```
 */
export class Refresher {
  readonly #context: SdkContext;
  readonly #inflight = new Map<string, Promise<RefreshOutcome>>();
  readonly #recent = new Map<string, { outcome: RefreshOutcome; until: number }>();

  constructor(context: SdkContext) {
    this.#context = context;
  }

  /** `previous`: the claims of the expired access JWT, only when it is bound to this refresh token. */
  refresh(refreshToken: string, previous: AccessClaims | undefined): Promise<RefreshOutcome> {
    const nowMs = this.#context.options.now();
    const recent = this.#recent.get(refreshToken);
    if (recent && recent.until > nowMs) return Promise.resolve(recent.outcome);
    const pending = this.#inflight.get(refreshToken);
    if (pending) return pending;
    const started = this.#present(refreshToken, previous)
      .then((outcome) => {
        // A transient failure (Tessera unreachable) is not remembered: the next request should try again.
        if (outcome.ok || !outcome.transient) this.#remember(refreshToken, outcome);
        return outcome;
      })
      .finally(() => this.#inflight.delete(refreshToken));
    this.#inflight.set(refreshToken, started);
    return started;
  }

  #remember(refreshToken: string, outcome: RefreshOutcome): void {
    const { options } = this.#context;
    if (options.refreshReuseSeconds === 0) return;
    const nowMs = options.now();
    for (const [key, entry] of this.#recent) if (entry.until <= nowMs) this.#recent.delete(key);
    if (this.#recent.size >= MAX_REMEMBERED) {
      const oldest = this.#recent.keys().next().value;
      if (oldest !== undefined) this.#recent.delete(oldest);
    }
    this.#recent.set(refreshToken, { outcome, until: nowMs + options.refreshReuseSeconds * 1000 });
  }

  async #present(refreshToken: string, previous: AccessClaims | undefined): Promise<RefreshOutcome> {
    if (refreshToken.length > 1024) {
      return { ok: false, transient: false, concurrent: false, error: new TesseraError("REFRESH_FAILED") };
    }
    const { issuer, options } = this.#context;
    let tokens: TokenResponse;
    try {
      tokens = await issuer.token({ grant_type: "refresh_token", refresh_token: refreshToken }, "REFRESH_FAILED");
    } catch (error) {
      return refused(error);
    }
    // From here on the old token is spent: any failure signs the user out (the new token cannot be trusted/used).
    try {
      let idToken: JWTPayload | undefined;
      if (tokens.id_token) {
        idToken = await issuer.verifyJwt(tokens.id_token, "REFRESH_FAILED", { requiredClaims: ["sub"] });
        if (idToken.azp !== undefined && idToken.azp !== options.clientId) throw new TesseraError("REFRESH_FAILED");
      }
      const claims = this.#context.claimsFrom(idToken, previous, tokens);
      if (!claims) throw new TesseraError("REFRESH_FAILED");
      // Tessera rotates on every use; should a server not rotate, the presented token stays valid.
      const successor = tokens.refresh_token ?? refreshToken;
      const outcome: RefreshOutcome = {
        ok: true,
        accessJwt: this.#context.sign(claims, successor),
        refreshToken: successor,
      };
      if (tokens.id_token) outcome.idToken = tokens.id_token;
      return outcome;
    } catch (cause) {
      return { ok: false, transient: false, concurrent: false, error: new TesseraError("REFRESH_FAILED", { cause }) };
    }
  }
}

/** Tessera did not rotate the token: unreachable or 5xx (transient), its grace window (concurrent), or a refusal. */
function refused(error: unknown): RefreshOutcome & { ok: false } {
  const oauthError = error instanceof TesseraError ? error.oauthError : undefined;
  const transient =
    oauthError === undefined ||
    /^http_5\d\d$/.test(oauthError) ||
    oauthError === "server_error" ||
    oauthError === "temporarily_unavailable";
  const description = error instanceof TesseraError ? (error.oauthErrorDescription ?? "") : "";
  const tesseraCode = error instanceof TesseraError ? error.tesseraCode : undefined;
  return {
    ok: false,
    transient,
    // Tessera's grace-window answer names itself in `tessera_code`; the English of error_description is never read.
    concurrent: oauthError === "invalid_grant" && tesseraCode === CONCURRENT_ROTATION,
    error: new TesseraError(
      "REFRESH_FAILED",
      oauthError === undefined
        ? { cause: error }
        : { oauthError, oauthErrorDescription: description, ...(tesseraCode ? { tesseraCode } : {}) },
    ),
  };
}
