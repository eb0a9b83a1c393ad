import { availableParallelism } from "node:os";
import { type Algorithm, hash, parseOptions, verify } from "@node-rs/argon2";
import { DeadlineExceededError, deadlineRemainingMs, outsideDeadline } from "@tessera/db";
import { dictionary } from "@zxcvbn-ts/language-common";
import type { Config } from "../config/index.ts";
import type { FieldError } from "../errors/index.ts";

/**
 * Password hashing and policy (SECURITY.md "Passwords and accounts"): argon2id with at least OWASP's parameters
 * (m=19456 KiB, t=2, p=1, enforced by the config schema), a length floor with no composition rules, and a check
 * against a maintained list of common passwords. Passwords are hashed exactly as typed: no trimming, no truncation.
 */

export type PasswordParams = Config["passwords"];

/** Longest password accepted. SECURITY.md asks for at least 64; much longer only costs hashing time. */
export const PASSWORD_MAX_LENGTH = 256;

// `Algorithm` is an ambient const enum, which isolatedModules cannot read; 2 is its Argon2id member.
const ARGON2ID = 2 as Algorithm;

function options(params: PasswordParams) {
  return {
    algorithm: ARGON2ID,
    memoryCost: params.argon2MemoryKib,
    timeCost: params.argon2TimeCost,
    parallelism: params.argon2Parallelism,
  };
}

/**
 * At most one argon2 computation per core at a time; the rest wait their turn here. Each holds its memory cost
 * (19 MiB by default) and streams through it: interleaved on one core (libuv runs four at once), they evict each other
 * from the caches and every one gets slower. Measured on this host's core: 16 verifications at a time through libuv's
 * four threads 102-106/s, one at a time 125-131/s. It also bounds argon2's memory to cores × memory cost, and leaves
 * libuv's other threads free for file and DNS work. `availableParallelism()` counts the cores this process may run on
 * (its CPU affinity).
 */
export class Gate {
  private active = 0;
  private begun = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(readonly limit: number) {}

  /**
   * Runs `task` when a place is free. A request whose deadline (packages/db deadline.ts) has passed by then is not run:
   * it has been answered already (503, http/deadline.ts), and its hash would be work for nobody, taken from the
   * requests still waiting behind it (under a flood, every one of them). It rejects with DB_DEADLINE_EXCEEDED instead,
   * the code a deadline-refused statement has, so callers treat it as they treat those.
   */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      const left = deadlineRemainingMs();
      if (left !== undefined && left <= 0) throw new DeadlineExceededError();
      this.begun++;
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }

  /** Computations running now (for tests). */
  get running(): number {
    return this.active;
  }

  /** Computations started since this gate was made (for tests). */
  get started(): number {
    return this.begun;
  }
}

export const argon2Gate = new Gate(Math.max(1, availableParallelism()));

export async function hashPassword(params: PasswordParams, password: string): Promise<string> {
  return argon2Gate.run(() => hash(password, options(params)));
}

/**
 * Checks a password against a stored PHC string. `needsRehash` is true when the stored hash was made with weaker
 * parameters (or another variant) than configured now, so the caller can upgrade it after a successful sign-in.
 * A malformed stored hash counts as a mismatch, never as an error the user sees.
 */
export async function verifyPassword(
  params: PasswordParams,
  stored: string,
  password: string,
): Promise<{ ok: boolean; needsRehash: boolean }> {
  let ok = false;
  try {
    ok = await argon2Gate.run(() => verify(stored, password));
  } catch (error) {
    // Not a verdict on the password: the request's deadline passed while it waited for the gate. Counting it as a
    // wrong password would hold it against the account's sign-in throttle.
    if (error instanceof DeadlineExceededError) throw error;
    return { ok: false, needsRehash: false };
  }
  return { ok, needsRehash: ok && hashIsWeaker(params, stored) };
}

export function hashIsWeaker(params: PasswordParams, stored: string): boolean {
  if (!stored.startsWith("$argon2id$")) return true;
  // "$argon2id$v=19$m=19456,t=2,p=1$salt$hash": the answer depends only on the part before the salt, which nearly
  // every stored hash shares; it is remembered per configuration (a handful of entries, bounded anyway).
  const settings = stored.slice(0, stored.indexOf("$", stored.indexOf("$", 10) + 1) + 1);
  let answers = weakerBySettings.get(params);
  if (!answers) {
    answers = new Map();
    weakerBySettings.set(params, answers);
  }
  let weaker = answers.get(settings);
  if (weaker === undefined) {
    weaker = parsedIsWeaker(params, stored);
    if (answers.size < 64) answers.set(settings, weaker);
  }
  return weaker;
}
const weakerBySettings = new WeakMap<PasswordParams, Map<string, boolean>>();

function parsedIsWeaker(params: PasswordParams, stored: string): boolean {
  try {
    const parsed = parseOptions(stored);
    return (
      parsed.memoryCost < params.argon2MemoryKib ||
      parsed.timeCost < params.argon2TimeCost ||
      parsed.parallelism < params.argon2Parallelism
    );
  } catch {
    return true;
  }
}

/**
 * A hash of a random throwaway password with the configured parameters, computed once per parameter set. Sign-in,
 * registration and forgot-password verify against it when the email is unknown, so an unknown email costs the same
 * argon2 work as a known one and the response time does not tell whether an account exists.
 */
const dummyHashes = new Map<string, Promise<string>>();
export function dummyHash(params: PasswordParams): Promise<string> {
  const key = `${params.argon2MemoryKib}:${params.argon2TimeCost}:${params.argon2Parallelism}`;
  let pending = dummyHashes.get(key);
  if (!pending) {
    // Shared by every later request, so not bound to the deadline of the one that happens to ask first; and should it
    // fail all the same, the next one asks again rather than inheriting the failure.
    pending = outsideDeadline(() => hashPassword(params, `dummy-${Math.random()}-${Date.now()}`));
    pending.catch(() => dummyHashes.delete(key));
    dummyHashes.set(key, pending);
  }
  return pending;
}

/** Burns the same argon2 work as a real verification, for paths where no account matched. */
export async function verifyAgainstDummy(params: PasswordParams, password: string): Promise<void> {
  await verifyPassword(params, await dummyHash(params), password);
}

/**
 * The common-password list: zxcvbn-ts's maintained "passwords-common" dictionary (about 49,000 entries drawn from
 * breach corpora; @zxcvbn-ts/language-common on npm). Loaded lazily, compared case-insensitively.
 */
let commonPasswords: Set<string> | undefined;
export function isCommonPassword(password: string): boolean {
  commonPasswords ??= new Set(dictionary["passwords-common"].map((p) => p.toLowerCase()));
  return commonPasswords.has(password.toLowerCase());
}

/**
 * The policy, as field errors in words a person understands (empty when the password is acceptable).
 * `context` holds values the password must not equal (the email, its local part, the display name).
 */
export function passwordProblems(
  params: PasswordParams,
  password: string,
  field = "password",
  context: (string | null | undefined)[] = [],
): FieldError[] {
  const length = [...password].length;
  if (length < params.minLength) {
    return [{ field, message: `Use at least ${params.minLength} characters.` }];
  }
  if (length > PASSWORD_MAX_LENGTH) {
    return [{ field, message: `Use at most ${PASSWORD_MAX_LENGTH} characters.` }];
  }
  if (isCommonPassword(password)) {
    return [{ field, message: "This password is too common and easy to guess. Choose another one." }];
  }
  const lower = password.toLowerCase();
  for (const value of context) {
    if (value && value.length >= 3 && lower === value.toLowerCase()) {
      return [{ field, message: "Do not use your email address or name as your password." }];
    }
  }
  return [];
}
