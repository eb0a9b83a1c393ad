import { createRemoteJWKSet, customFetch, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from "jose";
import { z } from "zod";
import { TesseraError, type TesseraErrorCode } from "./errors.ts";

const metadataSchema = z.object({
  issuer: z.string(),
  authorization_endpoint: z.url(),
  token_endpoint: z.url(),
  jwks_uri: z.url(),
  userinfo_endpoint: z.url().optional(),
  end_session_endpoint: z.url().optional(),
  revocation_endpoint: z.url().optional(),
  authorization_response_iss_parameter_supported: z.boolean().optional(),
});

/**
 * The parts of Tessera's discovery document the SDK uses.
 * @internal
 *
 * @example
 * ```ts
 * const metadata: IssuerMetadata = await issuer.metadata(); // internal
 * ```
 */
export type IssuerMetadata = z.infer<typeof metadataSchema>;

const tokenResponseSchema = z.object({
  access_token: z.string().min(1).max(8192),
  token_type: z.string().regex(/^bearer$/i),
  expires_in: z.number().int().positive().optional(),
  id_token: z.string().min(1).max(16384).optional(),
  refresh_token: z.string().min(1).max(1024).optional(),
  scope: z.string().optional(),
  session_expires_at: z.number().int().positive().optional(),
});

/**
 * A successful /token response, validated.
 * @internal
 *
 * @example
 * ```ts
 * const tokens: TokenResponse = await issuer.token({ grant_type: "refresh_token", refresh_token }, "REFRESH_FAILED");
 * ```
 */
export type TokenResponse = z.infer<typeof tokenResponseSchema>;

const oauthErrorSchema = z.object({
  error: z.string().max(200),
  error_description: z.string().max(1000).optional(),
  // Tessera's machine-readable outcome beside `error` (e.g. REFRESH_ROTATED_CONCURRENTLY); anything odd is dropped.
  tessera_code: z
    .string()
    .regex(/^[A-Z_]{1,64}$/)
    .optional()
    .catch(undefined),
});

/**
 *
 * @example
 * ```ts
 * new IssuerClient({ issuer, clientId, clientSecret, authMethod: "client_secret_basic", idTokenAlgorithms: ["RS256"], httpTimeoutMs: 5000, fetch, now: Date.now });
 * ```
 */
export interface IssuerClientOptions {
  issuer: string;
  clientId: string;
  clientSecret: string;
  authMethod: "client_secret_basic" | "client_secret_post";
  idTokenAlgorithms: string[];
  httpTimeoutMs: number;
  fetch: typeof fetch;
  now: () => number;
}

/**
 * Talks to Tessera: discovery (fetched once, issuer checked to be exactly the configured one), JWKS (jose's remote
 * key set: cached, refetched on an unknown `kid` with a cool-down), the token and revocation endpoints, and ID /
 * logout token verification with pinned algorithms. Internal; the public surface is `createTessera`.
 * @internal
 *
 * @example
 * ```ts
 * const payload = await issuer.verifyJwt(idToken, "ID_TOKEN_INVALID", { requiredClaims: ["sid"] }); // internal
 * ```
 */
export class IssuerClient {
  readonly #options: IssuerClientOptions;
  #metadata: Promise<IssuerMetadata> | undefined;
  #jwks: JWTVerifyGetKey | undefined;

  constructor(options: IssuerClientOptions) {
    this.#options = options;
  }

  /** Discovery, cached after the first success; a failure is not cached, so the next call retries. */
  metadata(): Promise<IssuerMetadata> {
    if (!this.#metadata) {
      this.#metadata = this.#discover().catch((error: unknown) => {
        this.#metadata = undefined;
        throw error;
      });
    }
    return this.#metadata;
  }

  async #discover(): Promise<IssuerMetadata> {
    const url = `${this.#options.issuer}/.well-known/openid-configuration`;
    let body: unknown;
    try {
      const response = await this.#options.fetch(url, {
        headers: { accept: "application/json" },
        signal: AbortSignal.timeout(this.#options.httpTimeoutMs),
      });
      if (!response.ok) throw new Error(`discovery answered HTTP ${response.status}`);
      body = await response.json();
    } catch (cause) {
      throw new TesseraError("ISSUER_UNAVAILABLE", { cause });
    }
    const parsed = metadataSchema.safeParse(body);
    if (!parsed.success)
      throw new TesseraError("ISSUER_UNAVAILABLE", { message: "The discovery document is invalid." });
    if (parsed.data.issuer !== this.#options.issuer) {
      throw new TesseraError("ISSUER_UNAVAILABLE", {
        message: `The discovery document names issuer ${parsed.data.issuer}, expected ${this.#options.issuer}.`,
      });
    }
    return parsed.data;
  }

  async #keys(): Promise<JWTVerifyGetKey> {
    if (!this.#jwks) {
      const metadata = await this.metadata();
      this.#jwks = createRemoteJWKSet(new URL(metadata.jwks_uri), {
        timeoutDuration: this.#options.httpTimeoutMs,
        [customFetch]: this.#options.fetch,
      });
    }
    return this.#jwks;
  }

  /**
   * Verifies a JWT signed by Tessera: signature through the JWKS, algorithm in the pinned list (asymmetric only, so
   * never `none` and no HS/RS confusion), `iss`, `aud` = this client, `exp`/`nbf`/`iat`, and the token type: `typ`
   * when given (`logout+jwt`), otherwise an ID token's (no `typ`, or `JWT`), so an access token (`at+jwt`) or a
   * logout token signed by the same key is never taken for an ID token.
   */
  async verifyJwt(
    token: string,
    failure: TesseraErrorCode,
    options: { typ?: string; requiredClaims?: string[] } = {},
  ): Promise<JWTPayload> {
    const keys = await this.#keys();
    try {
      const { payload, protectedHeader } = await jwtVerify(token, keys, {
        issuer: this.#options.issuer,
        audience: this.#options.clientId,
        algorithms: this.#options.idTokenAlgorithms,
        currentDate: new Date(this.#options.now()),
        clockTolerance: 5,
        requiredClaims: ["iat", ...(options.requiredClaims ?? [])],
        ...(options.typ ? { typ: options.typ } : {}),
      });
      if (!options.typ && protectedHeader.typ !== undefined && !/^(application\/)?jwt$/i.test(protectedHeader.typ)) {
        throw new Error(`unexpected typ ${protectedHeader.typ}`);
      }
      return payload;
    } catch (cause) {
      throw new TesseraError(failure, { cause });
    }
  }

  /**
   * POSTs a grant to /token with the client's credentials. RFC 6749 errors become a {@link TesseraError} with
   * `failure` as code and the RFC `error` value in `oauthError`; a network failure has no `oauthError`.
   */
  async token(params: Record<string, string>, failure: TesseraErrorCode): Promise<TokenResponse> {
    const metadata = await this.metadata();
    const body = new URLSearchParams(params);
    const headers: Record<string, string> = {
      accept: "application/json",
      "content-type": "application/x-www-form-urlencoded",
    };
    this.#authenticate(body, headers);
    let response: Response;
    let json: unknown;
    try {
      response = await this.#options.fetch(metadata.token_endpoint, {
        method: "POST",
        headers,
        body,
        signal: AbortSignal.timeout(this.#options.httpTimeoutMs),
      });
      json = await response.json().catch(() => null);
    } catch (cause) {
      throw new TesseraError(failure, { message: "The identity provider could not be reached.", cause });
    }
    if (!response.ok) {
      const error = oauthErrorSchema.safeParse(json);
      throw new TesseraError(
        failure,
        error.success
          ? {
              oauthError: error.data.error,
              oauthErrorDescription: error.data.error_description ?? "",
              ...(error.data.tessera_code ? { tesseraCode: error.data.tessera_code } : {}),
            }
          : { oauthError: `http_${response.status}` },
      );
    }
    const parsed = tokenResponseSchema.safeParse(json);
    if (!parsed.success) {
      throw new TesseraError(failure, { message: "The identity provider answered an invalid token response." });
    }
    return parsed.data;
  }

  /** RFC 7009 revocation of a refresh token; best effort (sign-out proceeds even if Tessera is unreachable). */
  async revokeRefreshToken(token: string): Promise<boolean> {
    try {
      const metadata = await this.metadata();
      if (!metadata.revocation_endpoint) return false;
      const body = new URLSearchParams({ token, token_type_hint: "refresh_token" });
      const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
      this.#authenticate(body, headers);
      const response = await this.#options.fetch(metadata.revocation_endpoint, {
        method: "POST",
        headers,
        body,
        signal: AbortSignal.timeout(this.#options.httpTimeoutMs),
      });
      await response.body?.cancel();
      return response.ok;
    } catch {
      return false;
    }
  }

  /**
   * Presents the client's credentials to the revocation endpoint with a token that does not exist (RFC 7009: 200 for
   * an unknown token, 401 `invalid_client` for wrong credentials). Changes nothing at Tessera.
   */
  async checkCredentials(): Promise<"ok" | "invalid_client" | "no_endpoint"> {
    const metadata = await this.metadata();
    if (!metadata.revocation_endpoint) return "no_endpoint";
    const body = new URLSearchParams({ token: "tessera-sdk-check", token_type_hint: "refresh_token" });
    const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
    this.#authenticate(body, headers);
    let response: Response;
    try {
      response = await this.#options.fetch(metadata.revocation_endpoint, {
        method: "POST",
        headers,
        body,
        signal: AbortSignal.timeout(this.#options.httpTimeoutMs),
      });
      await response.body?.cancel();
    } catch (cause) {
      throw new TesseraError("ISSUER_UNAVAILABLE", { cause });
    }
    if (response.status === 401 || response.status === 400) return "invalid_client";
    if (response.status >= 500) throw new TesseraError("ISSUER_UNAVAILABLE");
    return "ok";
  }

  /**
   * Asks /authorize for this client and `redirectUri` without following the answer: a redirect (to the sign-in page,
   * or back to `redirectUri`) means Tessera accepts the pair; a 4xx page means it refuses it (an unregistered redirect
   * URI, or an unknown client). Creates nothing a user could use (no session, no code).
   */
  async checkRedirectUri(redirectUri: string): Promise<"ok" | "refused"> {
    const metadata = await this.metadata();
    const url = new URL(metadata.authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: this.#options.clientId,
      redirect_uri: redirectUri,
      scope: "openid",
      state: "tessera-sdk-check",
      code_challenge: "tessera-sdk-check-tessera-sdk-check-tessera-sdk",
      code_challenge_method: "S256",
    }).toString();
    let response: Response;
    try {
      response = await this.#options.fetch(url, {
        redirect: "manual",
        headers: { accept: "text/html" },
        signal: AbortSignal.timeout(this.#options.httpTimeoutMs),
      });
      await response.body?.cancel();
    } catch (cause) {
      throw new TesseraError("ISSUER_UNAVAILABLE", { cause });
    }
    if (response.status >= 500) throw new TesseraError("ISSUER_UNAVAILABLE");
    return response.status >= 400 ? "refused" : "ok";
  }

  #authenticate(body: URLSearchParams, headers: Record<string, string>): void {
    const { clientId, clientSecret } = this.#options;
    if (this.#options.authMethod === "client_secret_post") {
      body.set("client_id", clientId);
      body.set("client_secret", clientSecret);
    } else {
      // RFC 6749 §2.3.1: both parts are form-urlencoded before Base64.
      const credentials = `${formEncode(clientId)}:${formEncode(clientSecret)}`;
      headers.authorization = `Basic ${Buffer.from(credentials).toString("base64")}`;
    }
  }
}

function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/%20/g, "+");
}
