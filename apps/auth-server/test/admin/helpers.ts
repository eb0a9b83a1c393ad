import type { FastifyInstance } from "fastify";
import { createAdmin, createApiKey } from "../../src/libraries/admin.ts";
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

/** A browser session cookie for a user (as the hosted sign-in would set it). */
export async function sessionCookie(app: FastifyInstance, userId: string): Promise<string> {
  const { token } = await signIn(app.ctx, app.ctx.db, {
    userId,
    amr: ["pwd"],
    meta: { ip: "127.0.0.1", userAgent: "test" },
  });
  return `tessera_session=${token}`;
}
