import { entitlements, purchases, userEntitlements } from "@tessera/db";
import { and, asc, eq, gt, isNull, or } from "drizzle-orm";
import type { FastifyInstance } from "fastify";
import type { TestApp } from "../helpers.ts";
import { buildTestApp } from "../helpers.ts";
import type { StripeStub } from "./stripe-stub.ts";

export const RETURN_TO = "https://shop.example/premium/thanks";

/** Tessera with Stripe pointed at the stub. */
export function buildStripeApp(stub: StripeStub, env: Record<string, string> = {}): Promise<TestApp> {
  return buildTestApp({
    STRIPE_SECRET_KEY: "sk_test_tessera",
    STRIPE_WEBHOOK_SECRET: stub.webhookSecret,
    STRIPE_API_URL: stub.url,
    BILLING_GRACE_PERIOD_SECONDS: String(3 * 86400),
    ...env,
  });
}

/** The user's purchase grants as rows (name, expiry, client limits, source_ref), sorted by name. */
export async function grantsOf(app: FastifyInstance, userId: string) {
  return app.ctx.db
    .select({
      name: entitlements.name,
      source: userEntitlements.source,
      sourceRef: userEntitlements.sourceRef,
      clientIds: userEntitlements.clientIds,
      expiresAt: userEntitlements.expiresAt,
      updatedAt: userEntitlements.updatedAt,
    })
    .from(userEntitlements)
    .innerJoin(entitlements, eq(entitlements.id, userEntitlements.entitlementId))
    .where(eq(userEntitlements.userId, userId))
    .orderBy(asc(entitlements.name));
}

/** Entitlement names the user owns at a moment (an unexpired grant), as the token claims will read them. */
export async function ownedAt(app: FastifyInstance, userId: string, at: Date): Promise<string[]> {
  const rows = await app.ctx.db
    .selectDistinct({ name: entitlements.name })
    .from(userEntitlements)
    .innerJoin(entitlements, eq(entitlements.id, userEntitlements.entitlementId))
    .where(
      and(
        eq(userEntitlements.userId, userId),
        or(isNull(userEntitlements.expiresAt), gt(userEntitlements.expiresAt, at)),
      ),
    )
    .orderBy(asc(entitlements.name));
  return rows.map((r) => r.name);
}

export async function purchaseOf(app: FastifyInstance, providerRef: string) {
  const [row] = await app.ctx.db.select().from(purchases).where(eq(purchases.providerRef, providerRef));
  return row;
}

/** Delivers a signed Stripe event to Tessera. */
export function deliverStripe(app: FastifyInstance, event: { payload: string; signature: string }) {
  return app.inject({
    method: "POST",
    url: "/webhooks/stripe",
    headers: { "content-type": "application/json", "stripe-signature": event.signature },
    payload: event.payload,
  });
}
