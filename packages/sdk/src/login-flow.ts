import { createHash, randomBytes } from "node:crypto";
import { parseCookie } from "cookie";
import type { SdkContext } from "./context.ts";
import { constantTimeEqual } from "./context.ts";
import { TesseraError } from "./errors.ts";
import { safeReturnTo } from "./return-to.ts";
import { deriveKey, seal, unseal } from "./seal.ts";
import type { CallbackResult, LoginInput, LoginResult } from "./types.ts";

const TRANSACTION_TTL_SECONDS = 600;

interface Transaction {
  state: string;
  nonce: string;
  verifier: string;
  returnTo: string;
  expiresAt: number;
  /** Started with prompt=none: a "sign-in needed" answer is an anonymous visitor, not a failure. */
  silent?: boolean;
}

/** OIDC Core 3.1.2.6: what a prompt=none request answers when the user would have to interact. */
const SILENT_FAILURES = new Set([
  "login_required",
  "interaction_required",
  "consent_required",
  "account_selection_required",
]);

/**
 * The sign-in: the /authorize redirect with its sealed transaction cookie, and the callback that completes it.
 * @internal
 *
 * @example
 * ```ts
 * const flow = new LoginFlow(context); // internal; apps call tessera.login() / tessera.callback()
 * ```
 */
export class LoginFlow {
  readonly #context: SdkContext;
  readonly #transactionKey: Buffer;

  constructor(context: SdkContext) {
    this.#context = context;
    this.#transactionKey = deriveKey(context.options.appSecret, "login-transaction");
  }

  async login(input: LoginInput = {}): Promise<LoginResult> {
    const { issuer, options, cookies } = this.#context;
    const metadata = await issuer.metadata();
    const transaction: Transaction = {
      state: randomBytes(32).toString("base64url"),
      nonce: randomBytes(32).toString("base64url"),
      verifier: randomBytes(32).toString("base64url"),
      returnTo: safeReturnTo(input.returnTo),
      expiresAt: this.#context.nowSeconds() + TRANSACTION_TTL_SECONDS,
      ...(input.prompt === "none" ? { silent: true } : {}),
    };
    const url = new URL(metadata.authorization_endpoint);
    const params = url.searchParams;
    params.set("response_type", "code");
    params.set("client_id", options.clientId);
    params.set("redirect_uri", options.redirectUri);
    params.set("scope", options.scope);
    params.set("state", transaction.state);
    params.set("nonce", transaction.nonce);
    params.set("code_challenge", createHash("sha256").update(transaction.verifier).digest("base64url"));
    params.set("code_challenge_method", "S256");
    if (input.prompt) params.set("prompt", input.prompt);
    if (input.loginHint) params.set("login_hint", input.loginHint.slice(0, 320));
    const sealed = seal(this.#transactionKey, transaction);
    return {
      url: url.toString(),
      setCookies: [cookies.cookie(options.names.transaction, sealed, TRANSACTION_TTL_SECONDS)],
    };
  }

  async callback(input: { url: string; cookieHeader?: string | undefined }): Promise<CallbackResult> {
    const { issuer, options, cookies, codec } = this.#context;
    const params = new URL(input.url, "http://callback.invalid").searchParams;
    const transaction = this.#openTransaction(input.cookieHeader);
    if (!transaction) throw new TesseraError("LOGIN_STATE_MISSING");
    const state = params.get("state");
    if (!state || !constantTimeEqual(state, transaction.state)) throw new TesseraError("STATE_MISMATCH");

    const metadata = await issuer.metadata();
    const iss = params.get("iss");
    if (iss !== null ? iss !== options.issuer : metadata.authorization_response_iss_parameter_supported === true) {
      throw new TesseraError("ISSUER_MISMATCH");
    }
    const error = params.get("error");
    if (error && transaction.silent && SILENT_FAILURES.has(error)) {
      return { user: null, returnTo: transaction.returnTo, setCookies: [cookies.clearTransaction()] };
    }
    if (error) throw new TesseraError("AUTHORIZATION_DENIED", { oauthError: error.slice(0, 100) });
    const code = params.get("code");
    if (!code || code.length > 512) throw new TesseraError("CALLBACK_INVALID");

    const tokens = await issuer.token(
      {
        grant_type: "authorization_code",
        code,
        redirect_uri: options.redirectUri,
        code_verifier: transaction.verifier,
      },
      "TOKEN_EXCHANGE_FAILED",
    );
    if (!tokens.id_token || !tokens.refresh_token) {
      throw new TesseraError("TOKEN_EXCHANGE_FAILED", {
        message: "The identity provider returned no ID token or refresh token (is offline_access allowed?).",
      });
    }
    const idToken = await issuer.verifyJwt(tokens.id_token, "ID_TOKEN_INVALID", {
      requiredClaims: ["sub", "sid", "exp"],
    });
    if (typeof idToken.nonce !== "string" || !constantTimeEqual(idToken.nonce, transaction.nonce)) {
      throw new TesseraError("NONCE_MISMATCH");
    }
    if (idToken.azp !== undefined && idToken.azp !== options.clientId) throw new TesseraError("ID_TOKEN_INVALID");
    const claims = this.#context.claimsFrom(idToken, undefined, tokens);
    if (!claims) throw new TesseraError("ID_TOKEN_INVALID");
    const accessJwt = this.#context.sign(claims, tokens.refresh_token);
    const now = this.#context.nowSeconds();
    const verified = codec.verify(accessJwt, now);
    if (verified.status !== "valid") throw new TesseraError("ID_TOKEN_INVALID");
    return {
      user: verified.user,
      returnTo: transaction.returnTo,
      setCookies: [
        ...cookies.session(accessJwt, tokens.refresh_token, tokens.id_token, claims.sxp, now),
        cookies.clearTransaction(),
      ],
    };
  }

  #openTransaction(cookieHeader: string | undefined): Transaction | null {
    const raw = cookieHeader ? parseCookie(cookieHeader)[this.#context.options.names.transaction] : undefined;
    const value = unseal(this.#transactionKey, raw) as Partial<Transaction> | null;
    if (
      !value ||
      typeof value.state !== "string" ||
      typeof value.nonce !== "string" ||
      typeof value.verifier !== "string" ||
      typeof value.returnTo !== "string" ||
      typeof value.expiresAt !== "number" ||
      value.expiresAt <= this.#context.nowSeconds()
    ) {
      return null;
    }
    return { ...value, returnTo: safeReturnTo(value.returnTo), silent: value.silent === true } as Transaction;
  }
}
