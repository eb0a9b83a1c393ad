import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/index.ts";

const dir = mkdtempSync(join(tmpdir(), "tessera-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KEY = "ab".repeat(32);

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig({ DATA_DIR: dir, ...env });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  return [];
}

const production = {
  NODE_ENV: "production",
  ISSUER: "https://id.example.com",
  DATABASE_URL: "postgres://tessera@db/tessera",
  TESSERA_MASTER_KEY: KEY,
  MAIL_DRIVER: "mailjet",
  MAILJET_API_KEY: "k",
  MAILJET_API_SECRET: "s",
};

describe("configuration", () => {
  it("starts with no variables at all, with development defaults", () => {
    const config = loadConfig({ DATA_DIR: dir });
    expect(config.port).toBe(3000);
    expect(config.issuer).toBe("http://localhost:3000");
    expect(config.databaseUrl).toBeUndefined();
    expect(config.masterKeySource).toBe("dev-file");
    expect(config.masterKey).toHaveLength(32);
    expect(config.cookieSecure).toBe(false);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.passwords)).toBe(true);
    // The development key is kept, so data encrypted with it stays readable after a restart.
    expect(loadConfig({ DATA_DIR: dir }).masterKey.equals(config.masterKey)).toBe(true);
  });

  it("derives the development issuer from PORT when ISSUER is unset", () => {
    expect(loadConfig({ DATA_DIR: dir, PORT: "4000" }).issuer).toBe("http://localhost:4000");
    expect(loadConfig({ DATA_DIR: dir, PORT: "4000", ISSUER: "https://id.example.com/" }).issuer).toBe(
      "https://id.example.com",
    );
  });

  it("names each invalid variable", () => {
    expect(problems({ PORT: "eighty" })).toEqual(["PORT: expected a whole number"]);
    expect(problems({ PORT: "70000" })).toEqual(["PORT: must be at most 65535"]);
    expect(problems({ ISSUER: "ftp://x" })).toEqual(["ISSUER: expected an http(s) URL"]);
    expect(problems({ DATABASE_URL: "mysql://x" })).toEqual(["DATABASE_URL: expected a postgres:// URL"]);
    expect(problems({ TESSERA_MASTER_KEY: "short" })[0]).toMatch(/^TESSERA_MASTER_KEY: expected 32 bytes/);
    expect(problems({ ARGON2_MEMORY_KIB: "4096" })).toEqual(["ARGON2_MEMORY_KIB: must be at least 19456"]);
    expect(problems({ WEBHOOK_SECRET_OVERLAP_SECONDS: "604801" })).toEqual([
      "WEBHOOK_SECRET_OVERLAP_SECONDS: must be at most 604800",
    ]);
    expect(problems({ WEBHOOK_SECRET_OVERLAP_SECONDS: "a day" })).toEqual([
      "WEBHOOK_SECRET_OVERLAP_SECONDS: expected a whole number",
    ]);
    expect(problems({ PASSWORD_RESET_TTL_SECONDS: "7200" })).toEqual([
      "PASSWORD_RESET_TTL_SECONDS: must be at most 1800",
    ]);
    expect(problems({ COOKIE_SECURE: "maybe" })).toEqual(["COOKIE_SECURE: expected true or false"]);
    expect(problems({ MAIL_DRIVER: "mailjet" })).toEqual([
      "MAILJET_API_KEY / MAILJET_API_SECRET: required when MAIL_DRIVER=mailjet",
    ]);
  });

  it("reports every problem at once", () => {
    expect(problems({ PORT: "x", LOG_LEVEL: "loud" })).toHaveLength(2);
  });

  it("reads secrets from NAME_FILE, without the trailing newline", () => {
    const keyFile = join(dir, "master-key");
    writeFileSync(keyFile, `${KEY}\n`);
    const dbFile = join(dir, "db-url");
    writeFileSync(dbFile, "postgres://u:p@h/d\n");
    const config = loadConfig({ DATA_DIR: dir, TESSERA_MASTER_KEY_FILE: keyFile, DATABASE_URL_FILE: dbFile });
    expect(config.masterKey.toString("hex")).toBe(KEY);
    expect(config.masterKeySource).toBe("env");
    expect(config.databaseUrl).toBe("postgres://u:p@h/d");
  });

  it("refuses an unreadable _FILE and both forms at once", () => {
    expect(problems({ TESSERA_MASTER_KEY_FILE: join(dir, "missing") })).toEqual([
      `TESSERA_MASTER_KEY_FILE: cannot read ${join(dir, "missing")} (ENOENT)`,
    ]);
    const keyFile = join(dir, "k2");
    writeFileSync(keyFile, KEY);
    expect(problems({ TESSERA_MASTER_KEY: KEY, TESSERA_MASTER_KEY_FILE: keyFile })).toEqual([
      "TESSERA_MASTER_KEY: set either TESSERA_MASTER_KEY or TESSERA_MASTER_KEY_FILE, not both",
    ]);
  });

  it("accepts a complete production configuration", () => {
    const config = loadConfig(production);
    expect(config.env).toBe("production");
    expect(config.cookieSecure).toBe(true);
  });

  it.each([
    ["TESSERA_MASTER_KEY", { TESSERA_MASTER_KEY: "" }, /^TESSERA_MASTER_KEY: required in production/],
    [
      "http issuer",
      { ISSUER: "http://id.example.com", COOKIE_SECURE: "true" },
      /^ISSUER: must be an https:\/\/ URL in production/,
    ],
    ["development outbox", { MAIL_DRIVER: "outbox" }, /^MAIL_DRIVER: the development outbox/],
    ["embedded database", { DATABASE_URL: "" }, /^DATABASE_URL: production runs on PostgreSQL/],
    ["placeholder master key", { TESSERA_MASTER_KEY: "0".repeat(64) }, /^TESSERA_MASTER_KEY: is a placeholder/],
    ["insecure cookies", { COOKIE_SECURE: "false" }, /^COOKIE_SECURE: must not be false in production/],
  ])("refuses a development default in production: %s", (_name, change, expected) => {
    const found = problems({ ...production, ...change });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(expected);
  });

  it("makes Secure cookies an explicit setting, not a guess from NODE_ENV", () => {
    expect(loadConfig({ DATA_DIR: dir, NODE_ENV: "development", ISSUER: "https://id.example.com" }).cookieSecure).toBe(
      true,
    );
    expect(loadConfig({ DATA_DIR: dir, ISSUER: "https://id.example.com", COOKIE_SECURE: "false" }).cookieSecure).toBe(
      false,
    );
    expect(loadConfig({ DATA_DIR: dir, COOKIE_SECURE: "true" }).cookieSecure).toBe(true);
  });
});
