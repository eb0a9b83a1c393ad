import { z } from "zod";
import type { CoreContext } from "../context.ts";
import { AppError } from "../errors/index.ts";
import {
  type AdminUserRow,
  type ApiKeyRow,
  countAdmins,
  findAdminByApiKeyHash,
  findUserByNormalizedEmail,
  insertAdminUser,
  insertApiKey,
  listAdmins,
  lockAdminCreation,
  touchApiKey,
  updateAdminUser,
} from "../queries/admin.ts";
import { audit, type RequestMeta } from "./audit.ts";
import { randomToken, sha256 } from "./crypto.ts";
import { hashPassword, passwordProblems } from "./passwords.ts";

export type { AdminUserRow, ApiKeyRow } from "../queries/admin.ts";

const CLI_META: RequestMeta = { ip: undefined, userAgent: "tessera-cli" };

const emailSchema = z
  .string()
  .max(254, "must be at most 254 characters")
  .transform((v) => v.trim().normalize("NFC").toLowerCase())
  .pipe(z.email("must be an email address"));

/** Writes a last_used_at at most this often per key, so the admin API's hot path stays read-only. */
const TOUCH_INTERVAL_SECONDS = 60;

/**
 * Creates the first admin (or promotes an existing account). There are no default accounts: this explicit command
 * is the only way an admin comes to exist. Refuses when an admin already exists unless `force` is set.
 */
export async function createAdmin(
  deps: CoreContext,
  input: { email: string; password: string; force?: boolean },
): Promise<{ user: AdminUserRow; created: boolean }> {
  const parsed = emailSchema.safeParse(input.email);
  if (!parsed.success) {
    throw new AppError("VALIDATION_FAILED", undefined, [{ field: "email", message: "must be an email address" }]);
  }
  const email = parsed.data;
  const { password } = input;
  // The same policy as every account (length, common passwords, not the email), hashed with argon2id as configured.
  const problems = passwordProblems(deps.config.passwords, password, "password", [email, email.split("@")[0]]);
  if (problems.length) throw new AppError("WEAK_PASSWORD", undefined, problems);
  const passwordHash = await hashPassword(deps.config.passwords, password);
  const now = deps.clock.now();
  return deps.db.transaction(async (tx) => {
    // Two `admin create` runs at once must not both see "no admin yet".
    await lockAdminCreation(tx);
    if (!input.force && (await countAdmins(tx)) > 0) throw new AppError("ADMIN_EXISTS");
    const existing = await findUserByNormalizedEmail(tx, email);
    let user: AdminUserRow | null;
    let created = false;
    if (existing) {
      if (existing.deletedAt) throw new AppError("CONFLICT", "That account has been deleted.");
      user = await updateAdminUser(tx, existing.id, {
        isAdmin: true,
        adminRole: "admin",
        passwordHash,
        passwordChangedAt: now,
        emailVerifiedAt: existing.emailVerifiedAt ?? now,
        disabledAt: null,
        updatedAt: now,
      });
    } else {
      created = true;
      user = await insertAdminUser(tx, {
        email,
        passwordHash,
        passwordChangedAt: now,
        // The operator running this command vouches for the address.
        emailVerifiedAt: now,
        isAdmin: true,
        adminRole: "admin",
        createdAt: now,
        updatedAt: now,
      });
    }
    if (!user) throw new Error("admin user not written");
    await audit(tx, CLI_META, {
      event: "admin.admin_created",
      outcome: "success",
      userId: user.id,
      details: { via: "cli", created, forced: Boolean(input.force) },
    });
    return { user, created };
  });
}

/**
 * Creates an admin API key for scripts (`Authorization: Bearer <key>`). The key (256 bits, `tak_` prefix so secret
 * scanners can spot a leak) is returned once; only its SHA-256 is stored. It belongs to an admin: when `email` is not
 * given, the only admin.
 */
export async function createApiKey(
  deps: CoreContext,
  input: { name: string; email?: string | undefined },
): Promise<{ apiKey: ApiKeyRow; key: string; user: AdminUserRow }> {
  const name = input.name.trim();
  if (name.length === 0 || name.length > 100) {
    throw new AppError("VALIDATION_FAILED", undefined, [{ field: "name", message: "must be 1 to 100 characters" }]);
  }
  let user: AdminUserRow | undefined;
  if (input.email !== undefined) {
    const parsed = emailSchema.safeParse(input.email);
    const found = parsed.success ? await findUserByNormalizedEmail(deps.db, parsed.data) : null;
    if (!found?.isAdmin || found.disabledAt || found.deletedAt) {
      throw new AppError("VALIDATION_FAILED", undefined, [{ field: "email", message: "is not an active admin" }]);
    }
    user = found;
  } else {
    const admins = await listAdmins(deps.db);
    if (admins.length === 0) throw new AppError("FORBIDDEN", "Create an admin first: tessera admin create --email …");
    if (admins.length > 1) {
      throw new AppError("VALIDATION_FAILED", undefined, [
        { field: "email", message: "several admins exist: say which one owns the key" },
      ]);
    }
    user = admins[0];
  }
  if (!user) throw new Error("no admin");
  const owner = user;
  const key = randomToken("tak_");
  const now = deps.clock.now();
  const apiKey = await deps.db.transaction(async (tx) => {
    const row = await insertApiKey(tx, { name, keyHash: sha256(key), userId: owner.id, createdAt: now });
    await audit(tx, CLI_META, {
      event: "admin.api_key_created",
      outcome: "success",
      userId: owner.id,
      actorId: owner.id,
      details: { via: "cli", name, keyId: row.id },
    });
    return row;
  });
  return { apiKey, key, user: owner };
}

/** The admin behind an API key, or null (unknown, revoked, or its user is no longer an active admin). */
export async function authenticateApiKey(deps: CoreContext, key: string): Promise<AdminUserRow | null> {
  if (key.length === 0 || key.length > 200) return null;
  const found = await findAdminByApiKeyHash(deps.db, sha256(key));
  if (!found) return null;
  const now = deps.clock.now();
  const last = found.apiKey.lastUsedAt?.getTime() ?? 0;
  if (now.getTime() - last >= TOUCH_INTERVAL_SECONDS * 1000) await touchApiKey(deps.db, found.apiKey.id, now);
  return found.user;
}
