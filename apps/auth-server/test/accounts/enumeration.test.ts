import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AccountsTestApp, Browser, buildAccountsApp, createVerifiedAccount } from "./helpers.ts";

/**
 * No user enumeration (SECURITY.md): register, login and forgot-password answer known and unknown emails with the
 * same status, the same body shape and about the same time. Times are medians of interleaved runs; the tolerance is
 * generous (a loaded 2-core machine is noisy) but far below one argon2 computation, which is what a missing dummy
 * hash would save — so skipping the dummy work makes this test fail.
 */
let t: AccountsTestApp;
const known = "known@example.com";
beforeAll(async () => {
  // The production default floor (250 ms) on register and forgot-password.
  t = await buildAccountsApp({ RATE_LIMIT_ENABLED: "false", ACCOUNT_RESPONSE_FLOOR_MS: "250" });
  await createVerifiedAccount(t, known);
});
afterAll(async () => t.close());

const RUNS = 9;

function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(shape);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, k === "requestId" ? "<id>" : shape(v)]));
  }
  return typeof value;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const unknownEmail = "nobody@example.com";

async function compare(
  send: (email: string, i: number) => Promise<{ statusCode: number; body: string; headers: Record<string, unknown> }>,
  fresh = false,
  runs = RUNS,
) {
  const times = { known: [] as number[], unknown: [] as number[] };
  const answers = { known: new Set<string>(), unknown: new Set<string>() };
  // Warm up (first argon2 runs, JIT, dummy-hash computation) before measuring.
  await send(known, -1);
  await send(fresh ? "warmup@example.com" : unknownEmail, -1);
  for (let i = 0; i < runs; i++) {
    for (const kind of i % 2 ? (["known", "unknown"] as const) : (["unknown", "known"] as const)) {
      // One unknown address throughout, like the one known address (throttling keys by email, so both age alike);
      // register needs a fresh one each time, or the first run would create it.
      const email =
        kind === "known"
          ? known
          : fresh
            ? `nobody${i}-${Math.random().toString(36).slice(2)}@example.com`
            : unknownEmail;
      const started = performance.now();
      const res = await send(email, i);
      times[kind].push(performance.now() - started);
      const parsed = res.body ? shape(JSON.parse(res.body)) : null;
      answers[kind].add(
        JSON.stringify({ status: res.statusCode, parsed, setCookie: res.headers["set-cookie"] !== undefined }),
      );
    }
  }
  return { times, answers };
}

function expectIndistinguishable(result: Awaited<ReturnType<typeof compare>>) {
  expect([...result.answers.known]).toEqual([...result.answers.unknown]);
  expect(result.answers.known.size).toBe(1);
  const k = median(result.times.known);
  const u = median(result.times.unknown);
  // One argon2id at m=19456 t=2 is ~20-60 ms here; allow half the slower median, at least 20 ms.
  const tolerance = Math.max(20, 0.5 * Math.max(k, u));
  if (process.env.DEBUG_TIMING) console.log(`known ${k.toFixed(1)} ms, unknown ${u.toFixed(1)} ms`);
  expect(Math.abs(k - u), `known ${k.toFixed(1)} ms vs unknown ${u.toFixed(1)} ms`).toBeLessThan(tolerance);
  return { k, u };
}

describe("no user enumeration", () => {
  it("login: same status, body shape and time for a known email with a wrong password and an unknown email", async () => {
    // More runs here: login has no floor, so its medians carry the machine's noise.
    const result = await compare(
      (email) => new Browser(t.app).json("POST", "/api/v1/login", { email, password: "wrong password 123" }),
      false,
      15,
    );
    expect([...result.answers.known][0]).toContain('"status":401');
    const { k } = expectIndistinguishable(result);
    // The comparison is meaningful: both paths do argon2 work.
    expect(k).toBeGreaterThan(3);
  });

  it("register: same answer and time for a taken email (wrong password) and a new one", async () => {
    const result = await compare(
      (email) => new Browser(t.app).json("POST", "/api/v1/register", { email, password: "a different passphrase" }),
      true,
    );
    expect([...result.answers.known][0]).toContain('"status":202');
    expectIndistinguishable(result);
  });

  it("forgot-password: same answer and time for a known and an unknown email", async () => {
    const result = await compare((email) => new Browser(t.app).json("POST", "/api/v1/forgot-password", { email }));
    expect([...result.answers.known][0]).toContain('"status":202');
    expectIndistinguishable(result);
  });

  it("the hosted login form answers a wrong password and an unknown email with the same page", async () => {
    const pages = [];
    for (const email of [known, "nobody-page@example.com"]) {
      const res = await new Browser(t.app).submit("/login", { email, password: "wrong password 123" });
      pages.push({
        status: res.statusCode,
        body: res.body.replace(/value="[^"]*"/g, 'value=""').replace(/Request [\w-]+/, ""),
      });
    }
    expect(pages[0]).toEqual(pages[1]);
    expect(pages[0]!.status).toBe(401);
  });
});
