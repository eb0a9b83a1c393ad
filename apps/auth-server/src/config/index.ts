import { isIP } from "node:net";
import { resolve } from "node:path";
import { z } from "zod";
import { billingConfig } from "./billing.ts";
import { bool, ConfigError, type Env, field, int, readSecret, url } from "./env.ts";

import { devMasterKey, parseMasterKey } from "./master-key.ts";
import { privacyConfig } from "./privacy.ts";
import { type Config, RATE_LIMIT_DEFAULTS, type RateLimitRoute, WEBHOOK_SECRET_OVERLAP_MAX_SECONDS } from "./types.ts";

export { ConfigError } from "./env.ts";
export { type Config, RATE_LIMIT_DEFAULTS, type RateLimitRoute } from "./types.ts";

function rateLimitRoutes(env: Env, problems: string[]): Config["rateLimits"]["routes"] {
  const spec = z
    .string()
    .regex(/^\d{1,7}\/\d{1,7}$/, { message: "expected max/windowSeconds, e.g. 20/60" })
    .refine((v) => !v.endsWith("/0"), { message: "window must be at least 1 second" });
  const routes = {} as Config["rateLimits"]["routes"];
  for (const [name, fallback] of Object.entries(RATE_LIMIT_DEFAULTS) as [RateLimitRoute, string][]) {
    const raw = field(env, `RATE_LIMIT_${name.toUpperCase()}`, spec.default(fallback), problems) ?? fallback;
    const [max, windowSeconds] = raw.split("/").map(Number) as [number, number];
    routes[name] = { max, windowSeconds };
  }
  return routes;
}

/** Without ISSUER, the development issuer follows PORT, so `PORT=4000 pnpm start` still builds working links. */
const devIssuer = (port: number | undefined) => `http://localhost:${port && port > 0 ? port : 3000}`;

export function loadConfig(env: Env = process.env, overrides: { dataDirForDevKey?: string } = {}): Config {
  const problems: string[] = [];
  const nodeEnv = field(
    env,
    "NODE_ENV",
    z.enum(["development", "production", "test"]).default("development"),
    problems,
  );
  const production = nodeEnv === "production";

  const port = field(env, "PORT", int(0, 65535).default(3000), problems);
  const issuerRaw = field(env, "ISSUER", url.default(devIssuer(port)), problems);
  const issuer = issuerRaw?.replace(/\/+$/, "");
  const dataDir = resolve(field(env, "DATA_DIR", z.string().default(".data"), problems) ?? ".data");
  const databaseUrl = readSecret(env, "DATABASE_URL", problems);
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push("DATABASE_URL: expected a postgres:// URL");
  }
  const masterKeyRaw = readSecret(env, "TESSERA_MASTER_KEY", problems);
  let masterKey = masterKeyRaw ? parseMasterKey(masterKeyRaw, problems) : undefined;
  let masterKeySource: Config["masterKeySource"] = "env";

  const mailDriver = field(env, "MAIL_DRIVER", z.enum(["outbox", "mailjet"]).default("outbox"), problems);
  const mailjetApiKey = readSecret(env, "MAILJET_API_KEY", problems);
  const mailjetApiSecret = readSecret(env, "MAILJET_API_SECRET", problems);
  if (mailDriver === "mailjet" && (!mailjetApiKey || !mailjetApiSecret)) {
    problems.push("MAILJET_API_KEY / MAILJET_API_SECRET: required when MAIL_DRIVER=mailjet");
  }

  if (production) {
    if (!masterKeyRaw)
      problems.push("TESSERA_MASTER_KEY: required in production (generate one with: openssl rand -hex 32)");
    if (issuer && !issuer.startsWith("https://")) problems.push("ISSUER: must be an https:// URL in production");
    if (mailDriver !== "mailjet")
      problems.push("MAIL_DRIVER: the development outbox cannot be used in production; set MAIL_DRIVER=mailjet");
    if (!databaseUrl)
      problems.push("DATABASE_URL: production runs on PostgreSQL; the embedded database is for development");
    if (masterKeyRaw && /^(0+|change-?me.*|placeholder.*|secret|dev.*)$/i.test(masterKeyRaw.trim())) {
      problems.push("TESSERA_MASTER_KEY: is a placeholder value; generate one with: openssl rand -hex 32");
    }
  }

  const cookieSecure =
    field(env, "COOKIE_SECURE", bool.optional(), problems) ?? Boolean(issuer?.startsWith("https://"));
  if (production && !cookieSecure) problems.push("COOKIE_SECURE: must not be false in production");

  const trustedProxies = (env.TRUSTED_PROXIES ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  // Checked here so a typo is a named configuration error, not a TypeError from Fastify's proxy-addr at start.
  const badProxies = trustedProxies.filter((p) => !isProxyAddress(p));
  if (badProxies.length) {
    problems.push(
      `TRUSTED_PROXIES: not an IP address, CIDR range, loopback, linklocal or uniquelocal: ${badProxies.join(", ")}`,
    );
  }

  const config: Config = {
    env: nodeEnv,
    port,
    host: field(env, "HOST", z.string().default("0.0.0.0"), problems),
    issuer: issuer ?? devIssuer(port),
    databaseUrl,
    dataDir,
    redisUrl: readSecret(env, "REDIS_URL", problems),
    masterKey: Buffer.alloc(0),
    masterKeySource,
    logLevel: field(
      env,
      "LOG_LEVEL",
      z
        .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
        .default(nodeEnv === "test" ? "silent" : "info"),
      problems,
    ),
    cookieSecure,
    trustedProxies,
    shutdownTimeoutMs: field(env, "SHUTDOWN_TIMEOUT_MS", int(0, 600_000).default(10_000), problems),
    // Under NODE_ENV=test the default is generous: suites share a loaded CI machine and test other things; the
    // deadline's own tests set it explicitly.
    requestDeadlineMs: field(
      env,
      "REQUEST_DEADLINE_MS",
      int(500, 600_000).default(nodeEnv === "test" ? 30_000 : 5000),
      problems,
    ),
    db: {
      maxConnections: field(env, "DB_POOL_MAX", int(1, 1000).default(10), problems),
      connectTimeoutSeconds: field(env, "DB_CONNECT_TIMEOUT_SECONDS", int(1, 600).default(3), problems),
      statementTimeoutMs: field(env, "DB_STATEMENT_TIMEOUT_MS", int(0, 86_400_000).default(30_000), problems),
      idleInTransactionTimeoutMs: field(
        env,
        "DB_IDLE_IN_TRANSACTION_TIMEOUT_MS",
        int(0, 86_400_000).default(30_000),
        problems,
      ),
    },
    passwords: {
      // OWASP's minimum for argon2id is m=19456 KiB, t=2, p=1; lower values are refused.
      argon2MemoryKib: field(env, "ARGON2_MEMORY_KIB", int(19456, 4_194_304).default(19456), problems),
      argon2TimeCost: field(env, "ARGON2_TIME_COST", int(2, 100).default(2), problems),
      argon2Parallelism: field(env, "ARGON2_PARALLELISM", int(1, 64).default(1), problems),
      minLength: field(env, "PASSWORD_MIN_LENGTH", int(8, 64).default(8), problems),
      responseFloorMs: field(env, "ACCOUNT_RESPONSE_FLOOR_MS", int(0, 10_000).default(250), problems),
    },
    sessions: {
      absoluteTtlSeconds: field(env, "SESSION_ABSOLUTE_TTL_SECONDS", int(60, 31_536_000).default(30 * 86400), problems),
      idleTtlSeconds: field(env, "SESSION_IDLE_TTL_SECONDS", int(60, 31_536_000).default(7 * 86400), problems),
      allowUnverifiedLogin: field(env, "ALLOW_UNVERIFIED_LOGIN", bool.default(true), problems),
    },
    tokens: {
      emailVerificationTtlSeconds: field(
        env,
        "EMAIL_VERIFICATION_TTL_SECONDS",
        int(60, 7 * 86400).default(86400),
        problems,
      ),
      // SECURITY.md: reset links live at most 30 minutes.
      passwordResetTtlSeconds: field(env, "PASSWORD_RESET_TTL_SECONDS", int(60, 1800).default(1800), problems),
      authorizationCodeTtlSeconds: field(env, "AUTHORIZATION_CODE_TTL_SECONDS", int(5, 60).default(60), problems),
      accessTokenTtlSeconds: field(env, "ACCESS_TOKEN_TTL_SECONDS", int(30, 3600).default(300), problems),
      idTokenTtlSeconds: field(env, "ID_TOKEN_TTL_SECONDS", int(30, 3600).default(300), problems),
      refreshGraceSeconds: field(env, "REFRESH_GRACE_SECONDS", int(0, 120).default(10), problems),
      clientSecretOverlapSeconds: field(
        env,
        "CLIENT_SECRET_OVERLAP_SECONDS",
        int(0, 30 * 86400).default(86400),
        problems,
      ),
      signingAlg: field(env, "SIGNING_ALG", z.enum(["RS256", "ES256", "EdDSA"]).default("RS256"), problems),
      // Access tokens (`at+jwt`) are signed with ES256 unless set: one P-256 signature costs ~0.07 ms of CPU against
      // ~0.4 ms for RS256, and a refresh signs one access token and one ID token (issue #10). ID tokens keep
      // SIGNING_ALG (RS256 by default, the algorithm every OpenID relying party must accept).
      accessTokenSigningAlg: field(
        env,
        "ACCESS_TOKEN_SIGNING_ALG",
        z.enum(["RS256", "ES256", "EdDSA"]).default("ES256"),
        problems,
      ),
    },
    jobs: {
      sweeperIntervalSeconds: field(env, "SWEEPER_INTERVAL_SECONDS", int(1, 86400).default(300), problems),
      sweeperRetentionSeconds: field(
        env,
        "SWEEPER_RETENTION_SECONDS",
        int(0, 365 * 86400).default(7 * 86400),
        problems,
      ),
      backchannelIntervalSeconds: field(env, "BACKCHANNEL_INTERVAL_SECONDS", int(1, 3600).default(5), problems),
      webhookSecretOverlapSeconds: field(
        env,
        "WEBHOOK_SECRET_OVERLAP_SECONDS",
        int(0, WEBHOOK_SECRET_OVERLAP_MAX_SECONDS).default(86400),
        problems,
      ),
    },
    mail: {
      driver: mailDriver,
      from: field(
        env,
        "MAIL_FROM",
        z.string().email({ message: "expected an email address" }).default("no-reply@tessera.local"),
        problems,
      ),
      fromName: field(env, "MAIL_FROM_NAME", z.string().default("Tessera"), problems),
      mailjetApiKey,
      mailjetApiSecret,
      mailjetApiUrl: field(env, "MAILJET_API_URL", url.optional(), problems),
    },
    rateLimits: {
      enabled: field(env, "RATE_LIMIT_ENABLED", bool.default(true), problems),
      redisPrefix: field(env, "RATE_LIMIT_REDIS_PREFIX", z.string().min(1).default("tessera:rl:"), problems),
      routes: rateLimitRoutes(env, problems),
    },
    throttle: {
      ipMaxFailures: field(env, "THROTTLE_IP_MAX_FAILURES", int(1, 100_000).default(30), problems),
      ipWindowSeconds: field(env, "THROTTLE_IP_WINDOW_SECONDS", int(1, 86400).default(600), problems),
      ipSuspendBaseSeconds: field(env, "THROTTLE_IP_SUSPEND_BASE_SECONDS", int(1, 86400).default(60), problems),
      ipSuspendMaxSeconds: field(env, "THROTTLE_IP_SUSPEND_MAX_SECONDS", int(1, 30 * 86400).default(86400), problems),
      accountFreeFailures: field(env, "THROTTLE_ACCOUNT_FREE_FAILURES", int(0, 1000).default(3), problems),
      accountDelayBaseSeconds: field(env, "THROTTLE_ACCOUNT_DELAY_BASE_SECONDS", int(0, 3600).default(1), problems),
      accountDelayMaxSeconds: field(env, "THROTTLE_ACCOUNT_DELAY_MAX_SECONDS", int(0, 3600).default(30), problems),
      accountLockThreshold: field(env, "THROTTLE_ACCOUNT_LOCK_THRESHOLD", int(1, 10_000).default(10), problems),
      accountLockSeconds: field(env, "THROTTLE_ACCOUNT_LOCK_SECONDS", int(1, 86400).default(900), problems),
      accountLockMaxSeconds: field(env, "THROTTLE_ACCOUNT_LOCK_MAX_SECONDS", int(1, 86400).default(3600), problems),
      accountWindowSeconds: field(env, "THROTTLE_ACCOUNT_WINDOW_SECONDS", int(1, 30 * 86400).default(3600), problems),
    },
    grants: {
      deviceCodeTtlSeconds: field(env, "DEVICE_CODE_TTL_SECONDS", int(60, 3600).default(600), problems),
      devicePollIntervalSeconds: field(env, "DEVICE_POLL_INTERVAL_SECONDS", int(1, 60).default(5), problems),
      guestIdleDays: field(env, "GUEST_IDLE_DAYS", int(1, 3650).default(30), problems),
    },
    mfa: {
      challengeTtlSeconds: field(env, "MFA_CHALLENGE_TTL_SECONDS", int(30, 3600).default(300), problems),
      challengeMaxAttempts: field(env, "MFA_CHALLENGE_MAX_ATTEMPTS", int(1, 100).default(5), problems),
    },
    // Payments (#12)
    billing: billingConfig(env, problems),
    // Metrics (issue #17, ecosystem)
    metrics: {
      token: field(
        env,
        "METRICS_TOKEN",
        z.string().min(16).optional(),
        problems,
        readSecret(env, "METRICS_TOKEN", problems),
      ),
      port: field(env, "METRICS_PORT", int(1, 65535).optional(), problems),
      host: field(env, "METRICS_HOST", z.string().min(1).default("127.0.0.1"), problems) ?? "127.0.0.1",
    },
    // Privacy (#16)
    privacy: privacyConfig(env, problems),
  };

  if (problems.length > 0) throw new ConfigError(problems);

  if (!masterKey) {
    masterKey = devMasterKey(overrides.dataDirForDevKey ?? dataDir);
    masterKeySource = "dev-file";
  }
  config.masterKey = masterKey;
  config.masterKeySource = masterKeySource;
  return deepFreeze(config);
}

/** What Fastify's trustProxy (proxy-addr) accepts: an IP, an IP/prefix, or one of its named ranges. */
function isProxyAddress(value: string): boolean {
  if (["loopback", "linklocal", "uniquelocal"].includes(value)) return true;
  const [address = "", prefix, extra] = value.split("/");
  const version = isIP(address);
  if (!version || extra !== undefined) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Buffer.isBuffer(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** A configuration for tests: in-memory friendly defaults with any field overridden. */
export function testConfig(env: Env = {}): Config {
  return loadConfig({ NODE_ENV: "test", TESSERA_MASTER_KEY: "11".repeat(32), ...env });
}
