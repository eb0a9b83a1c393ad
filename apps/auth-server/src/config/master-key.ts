import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** TESSERA_MASTER_KEY: 32 bytes as 64 hex characters or base64url; a problem is pushed otherwise. */
export function parseMasterKey(raw: string, problems: string[]): Buffer | undefined {
  const trimmed = raw.trim();
  const buf = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, "hex") : Buffer.from(trimmed, "base64url");
  if (buf.length !== 32) {
    problems.push("TESSERA_MASTER_KEY: expected 32 bytes as 64 hex characters or base64 (try: openssl rand -hex 32)");
    return undefined;
  }
  return buf;
}

/** In development a master key is generated once into DATA_DIR so data stays readable across restarts. */
export function devMasterKey(dataDir: string): Buffer {
  const path = join(dataDir, "dev-master-key");
  if (existsSync(path)) return Buffer.from(readFileSync(path, "utf8").trim(), "hex");
  mkdirSync(dataDir, { recursive: true });
  const key = randomBytes(32);
  writeFileSync(path, key.toString("hex"), { mode: 0o600 });
  return key;
}
