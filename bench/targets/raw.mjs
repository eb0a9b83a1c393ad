// Benchmark floor: the work without the server around it, in its own process on the servers' core.
// - "rotate SECONDS": 16 chains rotating through the same transaction Tessera's refresh grant is built around
//   (UPDATE … RETURNING that retires the token, INSERT of its successor), through postgres.js, on Tessera's database.
// - "argon2 SECONDS": argon2id verifications with Tessera's default cost (@node-rs/argon2, as Tessera), one per core
//   this process may run on at a time: the fastest way to run them (interleaved on one core they evict each other
//   from the caches: 16 at a time through libuv's four threads ran 102-106/s here, one at a time 125-131/s), and what
//   Tessera does (passwords.ts argon2Gate).
// Answers { count, cpu } over IPC.
import { createHash, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";

const require = createRequire(new URL("../../apps/auth-server/package.json", import.meta.url));
const argon2 = require("@node-rs/argon2");
const postgres = createRequire(new URL("../../packages/db/package.json", import.meta.url))("postgres");

const CHAINS = 16;
const sql = postgres(process.env.DATABASE_URL, { max: CHAINS, onnotice: () => {} });
const sha256 = (value) => createHash("sha256").update(value).digest("hex");

const [owner] = await sql`select session_id, client_id, user_id from refresh_tokens limit 1`;
const chains = [];
for (let i = 0; i < CHAINS; i++) {
  const token = randomBytes(32).toString("base64url");
  await sql`insert into refresh_tokens (token_hash, session_id, client_id, user_id, scope)
    values (${sha256(token)}, ${owner.session_id}, ${owner.client_id}, ${owner.user_id}, 'openid')`;
  chains.push(token);
}

async function rotate(index) {
  const next = randomBytes(32).toString("base64url");
  await sql.begin(async (tx) => {
    const [retired] = await tx`update refresh_tokens set rotated_at = now()
      where token_hash = ${sha256(chains[index])} and rotated_at is null and revoked_at is null
      returning id, session_id, client_id, user_id, scope`;
    if (!retired) throw new Error("raw rotation lost its token");
    await tx`insert into refresh_tokens (token_hash, session_id, client_id, user_id, parent_id, scope)
      values (${sha256(next)}, ${retired.session_id}, ${retired.client_id}, ${retired.user_id}, ${retired.id},
              ${retired.scope})`;
  });
  chains[index] = next;
}

const PASSWORD = "correct horse battery staple";
const argonOptions = { algorithm: 2, memoryCost: 19456, timeCost: 2, parallelism: 1 };
const hash = await argon2.hash(PASSWORD, argonOptions);

async function loop(seconds, step, workers = CHAINS) {
  const until = performance.now() + seconds * 1000;
  let count = 0;
  const before = process.cpuUsage();
  await Promise.all(
    Array.from({ length: workers }, async (_, i) => {
      while (performance.now() < until) {
        await step(i);
        count++;
      }
    }),
  );
  const cpu = process.cpuUsage(before);
  return { count, cpu: cpu.user + cpu.system };
}

process.on("message", async (message) => {
  const [what, seconds] = message.split(" ");
  if (what === "rotate") process.send(await loop(Number(seconds), rotate));
  else if (what === "argon2")
    process.send(
      await loop(
        Number(seconds),
        async () => {
          if (!(await argon2.verify(hash, PASSWORD))) throw new Error("argon2 verify failed");
        },
        availableParallelism(),
      ),
    );
});
process.on("SIGTERM", () => sql.end({ timeout: 1 }).then(() => process.exit(0)));
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
