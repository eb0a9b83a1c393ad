import { users } from "@tessera/db";
import { eq } from "drizzle-orm";
import type { FastifyInstance } from "fastify";
import { createAdmin, createApiKey } from "../../src/libraries/admin.ts";
import { beginTotpEnrolment, confirmTotpEnrolment } from "../../src/libraries/mfa/enrolment.ts";
import { currentCode } from "../../src/libraries/mfa/factor.ts";
import { signIn } from "../../src/libraries/sessions.ts";

/** Creates an admin and an API key for it; returns the bearer header and the admin's id. */
export async function seedAdmin(
  app: FastifyInstance,
  email = "root@tessera.test",
): Promise<{ userId: string; authorization: string; key: string }> {
  const { user } = await createAdmin(app.ctx, { email, password: "correct horse battery staple", force: true });
  const { key } = await createApiKey(app.ctx, { name: "tests", email });
  return { userId: user.id, authorization: `Bearer ${key}`, key };
}

/** A browser session cookie for a user (as the hosted sign-in would set it), signed in with `amr`. */
export async function sessionCookie(app: FastifyInstance, userId: string, amr: string[] = ["pwd"]): Promise<string> {
  const { token } = await signIn(app.ctx, app.ctx.db, {
    userId,
    amr,
    meta: { ip: "127.0.0.1", userAgent: "test" },
  });
  return `tessera_session=${token}`;
}

/** Turns two-step verification on for a user (as /account/mfa would), so an admin's session may use the admin API. */
export async function enableTotp(app: FastifyInstance, userId: string): Promise<void> {
  const meta = { ip: "127.0.0.1", userAgent: "test" };
  const [user] = await app.ctx.db.select().from(users).where(eq(users.id, userId));
  if (!user) throw new Error("no user");
  const { secret } = await beginTotpEnrolment(app.ctx, meta, user);
  await confirmTotpEnrolment(app.ctx, meta, { userId, code: currentCode(secret, app.ctx.clock.now()) });
}
