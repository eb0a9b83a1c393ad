import type { BillingConfig } from "./billing.ts";
import type { PrivacyConfig } from "./privacy.ts";

/** The longest webhook secret rotation overlap (7 days), for WEBHOOK_SECRET_OVERLAP_SECONDS and a rotation's own. */
export const WEBHOOK_SECRET_OVERLAP_MAX_SECONDS = 7 * 86400;

/**
 * The whole configuration, parsed once from the environment and frozen. Units are in the names.
 * Development defaults let `pnpm start` run with no variables; production mode refuses each of them by name.
 */
export interface Config {
  env: "development" | "production" | "test";
  port: number;
  host: string;
  /** Public base URL; every link Tessera builds (emails, discovery) comes from here, never from the Host header. */
  issuer: string;
  databaseUrl: string | undefined;
  dataDir: string;
  redisUrl: string | undefined;
  /** 32 bytes; encrypts signing keys and TOTP secrets at rest. */
  masterKey: Buffer;
  masterKeySource: "env" | "dev-file";
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** Explicit; defaults to whether the issuer is https, never to NODE_ENV. */
  cookieSecure: boolean;
  /** Proxies whose X-Forwarded-For is believed (IPs or CIDRs). Empty = use the socket address. */
  trustedProxies: string[];
  shutdownTimeoutMs: number;
  /**
   * Every request is answered within this many milliseconds: database work still pending then is withdrawn (never
   * runs later) and the request gets 503 DATABASE_UNAVAILABLE (OAuth endpoints: temporarily_unavailable).
   */
  requestDeadlineMs: number;
  db: {
    maxConnections: number;
    connectTimeoutSeconds: number;
    /** Server-side statement_timeout of every connection (0 = none); within a request, the deadline bounds it too. */
    statementTimeoutMs: number;
    idleInTransactionTimeoutMs: number;
  };
  passwords: {
    argon2MemoryKib: number;
    argon2TimeCost: number;
    argon2Parallelism: number;
    minLength: number;
    /**
     * Register and forgot-password answer no sooner than this many milliseconds after they start, so the extra writes
     * of a new account (or a reset link) do not show in the response time. 0 turns it off (for tests of other things).
     */
    responseFloorMs: number;
  };
  sessions: {
    absoluteTtlSeconds: number;
    idleTtlSeconds: number;
    allowUnverifiedLogin: boolean;
  };
  tokens: {
    emailVerificationTtlSeconds: number;
    passwordResetTtlSeconds: number;
    authorizationCodeTtlSeconds: number;
    accessTokenTtlSeconds: number;
    idTokenTtlSeconds: number;
    refreshGraceSeconds: number;
    clientSecretOverlapSeconds: number;
    signingAlg: "RS256" | "ES256" | "EdDSA";
    /**
     * The algorithm of Tessera's access tokens (`at+jwt`), ES256 by default: it signs in ~0.07 ms against ~0.4 ms for
     * RS256, the largest CPU cost of a refresh (issue #10). A resource server that verifies access tokens itself must
     * accept it (RFC 9068 obliges resource servers to support RS256 only): set RS256 for one that cannot.
     */
    accessTokenSigningAlg: "RS256" | "ES256" | "EdDSA";
  };
  jobs: {
    sweeperIntervalSeconds: number;
    sweeperRetentionSeconds: number;
    backchannelIntervalSeconds: number;
    /**
     * After a webhook secret rotation, deliveries are signed with the previous secret too for this long (default 24 h;
     * 0..7 days), so an app can deploy the new secret without refusing events meanwhile. A rotation may ask another.
     */
    webhookSecretOverlapSeconds: number;
  };
  mail: {
    driver: "outbox" | "mailjet";
    from: string;
    fromName: string;
    mailjetApiKey: string | undefined;
    mailjetApiSecret: string | undefined;
    /** Override of Mailjet's API URL, for tests pointing node-mailjet at a local stub. */
    mailjetApiUrl: string | undefined;
  };
  /** Per-route request limits per client IP (`RATE_LIMIT_<ROUTE>=max/windowSeconds`); Redis-shared when REDIS_URL is set. */
  rateLimits: {
    enabled: boolean;
    /** Prefix of every Redis key, so several deployments (or test runs) can share one Redis. */
    redisPrefix: string;
    routes: Record<RateLimitRoute, { max: number; windowSeconds: number }>;
  };
  /** Failed sign-in throttling: IP suspension with exponential backoff, per-account delays then a time-based lock. */
  throttle: {
    ipMaxFailures: number;
    ipWindowSeconds: number;
    ipSuspendBaseSeconds: number;
    ipSuspendMaxSeconds: number;
    /** Failures per account before any delay. */
    accountFreeFailures: number;
    accountDelayBaseSeconds: number;
    accountDelayMaxSeconds: number;
    /** Failures (within the window) that lock the account for a while. */
    accountLockThreshold: number;
    accountLockSeconds: number;
    accountLockMaxSeconds: number;
    /** Failures older than this are forgotten. */
    accountWindowSeconds: number;
  };
  /** Device flow, client credentials and guest accounts (issue #13, grants). */
  grants: {
    /** Lifetime of a device code and its user code (RFC 8628 `expires_in`). */
    deviceCodeTtlSeconds: number;
    /** Minimum seconds between two polls of one device code (RFC 8628 `interval`). */
    devicePollIntervalSeconds: number;
    /** Guest accounts with no activity for this many days are deleted by the sweeper. */
    guestIdleDays: number;
  };
  mfa: {
    /** Lifetime of the half-finished sign-in between the password and the code step. */
    challengeTtlSeconds: number;
    challengeMaxAttempts: number;
  };
  /** Payments (#12): Stripe and BTCPay; off when neither is configured. */
  billing: BillingConfig;
  /** Prometheus metrics (issue #17, ecosystem): off unless a bearer token or a separate port is set. */
  metrics: {
    /** `METRICS_TOKEN` (or `_FILE`): `/metrics` on the main port answers only `Authorization: Bearer <token>`. */
    token: string | undefined;
    /** `METRICS_PORT`: `/metrics` served without a token on this port only (bind it to a private interface). */
    port: number | undefined;
    host: string;
  };
  /** Privacy (#16): re-authentication window, audit retention, terms and privacy versions. */
  privacy: PrivacyConfig;
}

/** Routes with their own request limit; each reads `RATE_LIMIT_<NAME>` (e.g. `RATE_LIMIT_LOGIN=20/60`). */
export const RATE_LIMIT_DEFAULTS = {
  login: "20/60",
  register: "10/600",
  forgot_password: "5/600",
  reset_password: "10/600",
  verify_email: "20/600",
  otp: "10/60",
  mfa: "20/600",
  token: "600/60",
  introspect: "600/60",
  revoke: "300/60",
  admin: "300/60",
  // grants (#13): device authorization requests, user-code entries on /device, the guest API (called by game back
  // ends for all their players, so as generous as /token)
  device_authorization: "60/60",
  device: "30/600",
  guest: "600/60",
} as const;
export type RateLimitRoute = keyof typeof RATE_LIMIT_DEFAULTS;
