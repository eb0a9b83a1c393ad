import { requireUser, tesseraPlugin } from "@tessera/sdk/fastify";
import Fastify, { type FastifyInstance } from "fastify";

/** What the shop needs to run as a Tessera client. */
export interface DemoWebOptions {
  /** Tessera's issuer URL. */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The shop's own secret (≥ 32 bytes) for its access JWTs. */
  appSecret: string;
  /** Where the shop is reachable, e.g. http://localhost:4001 (its callback is `${publicUrl}/auth/callback`). */
  publicUrl: string;
  /** The game's URL, for the cross-app link. */
  gameUrl?: string;
  /** Secure cookies; true whenever served over https. */
  secureCookies?: boolean;
  logger?: boolean;
}

const PRODUCTS = [
  { id: "sword", name: "Crystal sword", price: 1200 },
  { id: "shield", name: "Oak shield", price: 800 },
  { id: "potion", name: "Healing potion", price: 150 },
];

const escapeHtml = (value: string) =>
  value.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #1d2433; }
  header { display: flex; justify-content: space-between; align-items: center; border-bottom: 1px solid #dde; }
  .products { display: grid; grid-template-columns: repeat(3, 1fr); gap: 1rem; margin-top: 1.5rem; }
  .card { border: 1px solid #dde; border-radius: .5rem; padding: 1rem; }
  button, .button { background: #3451b2; color: #fff; border: 0; border-radius: .4rem; padding: .5rem .9rem;
    text-decoration: none; font: inherit; cursor: pointer; }
</style></head><body>${body}</body></html>`;
}

/** Whether the user's claims include the "premium" entitlement (issued by Tessera in the `entitlements` claim). */
export function ownsPremium(claims: Readonly<Record<string, unknown>>): boolean {
  const entitlements = claims.entitlements;
  return Array.isArray(entitlements) && entitlements.includes("premium");
}

/**
 * The demo shop: a Tessera client built only on `@tessera/sdk/fastify`. Anyone may browse; the cart and `/api/me`
 * need a signed-in user.
 */
export async function buildDemoWeb(options: DemoWebOptions): Promise<FastifyInstance> {
  // Query strings are dropped from logged URLs: the callback's carries the authorization code and state.
  const app = Fastify({
    logger: options.logger
      ? { serializers: { req: (request) => ({ method: request.method, url: String(request.url).split("?")[0] }) } }
      : false,
  });
  const publicUrl = options.publicUrl.replace(/\/+$/, "");
  await app.register(tesseraPlugin, {
    issuer: options.issuer,
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    appSecret: options.appSecret,
    redirectUri: `${publicUrl}/auth/callback`,
    postLogoutRedirectUri: `${publicUrl}/`,
    // The game runs on the same host (another port): cookies ignore ports, so each app has its own cookie names.
    cookies: { secure: options.secureCookies ?? publicUrl.startsWith("https://"), prefix: "shop" },
    onCallbackError: (error, _request, reply) =>
      reply
        .code(error.status)
        .type("text/html")
        .send(page("Sign-in failed", `<h1>Sign-in failed</h1><p>${escapeHtml(error.message)}</p><a href="/">Back</a>`)),
  });
  const carts = new Map<string, string[]>();

  app.addHook("onSend", async (_request, reply) => {
    reply.header("x-content-type-options", "nosniff");
    reply.header("referrer-policy", "same-origin");
    reply.header("content-security-policy", "default-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'");
  });

  app.get("/", async (request, reply) => {
    const user = request.user;
    const who = user
      ? `<p data-testid="status">Signed in as <strong data-testid="user-email">${escapeHtml(user.email ?? user.id)}</strong></p>
         <form method="post" action="/auth/logout"><button data-testid="sign-out">Sign out everywhere</button></form>`
      : `<p data-testid="status">Signed out</p><a class="button" data-testid="sign-in" href="/auth/login?returnTo=/">Sign in with Tessera</a>`;
    const cart = user ? (carts.get(user.id) ?? []) : [];
    // Premium is sold by Tessera (one purchase unlocks it in every app); the `entitlements` claim says who has it.
    const premium = !user
      ? ""
      : ownsPremium(user.claims)
        ? `<p data-testid="premium-status"><strong>★ Premium</strong>: thank you! It is unlocked in every app.</p>`
        : `<p data-testid="premium-status">Go Premium: no ads, in the shop and in the game.
           <a class="button" data-testid="buy-premium" href="/premium">Buy Premium</a></p>`;
    const products = PRODUCTS.map(
      (p) => `<div class="card"><h3>${escapeHtml(p.name)}</h3><p>${p.price} gems</p>
        ${user ? `<form method="post" action="/cart"><input type="hidden" name="product" value="${p.id}"><button>Add to cart</button></form>` : ""}</div>`,
    ).join("");
    const game = options.gameUrl
      ? `<p><a data-testid="game-link" href="${escapeHtml(options.gameUrl)}">Play the game</a></p>`
      : "";
    return reply
      .type("text/html")
      .header("cache-control", "no-store")
      .send(
        page(
          "Tessera Shop",
          `<header><h1>Tessera Shop</h1><div>${who}</div></header>${premium}${game}
           <p data-testid="cart">Cart: ${cart.length} item(s)</p><div class="products">${products}</div>`,
        ),
      );
  });

  // Tessera's checkout for the "premium" plan; the price and the plan come from Tessera's records, not from here.
  app.get("/premium", { onRequest: requireUser }, async (_request, reply) =>
    reply.redirect(app.tessera.checkoutUrl("premium", { returnTo: "/premium/done" }), 303),
  );
  // Back from the checkout: what the user owns may have changed, so the next request refreshes the claims at once
  // (Tessera grants only on the provider's signed webhook; the page says so while it is still processing).
  app.get("/premium/done", { onRequest: requireUser }, async (request, reply) => {
    app.tessera.markClaimsStale(request.user!.id);
    return reply.redirect("/", 303);
  });

  app.get("/api/me", { onRequest: requireUser }, async (request, reply) => {
    const user = request.user!;
    reply.header("cache-control", "no-store");
    return { id: user.id, email: user.email, name: user.name, sessionId: user.sessionId };
  });

  app.register(async (forms) => {
    forms.addContentTypeParser(
      "application/x-www-form-urlencoded",
      { parseAs: "string", bodyLimit: 4096 },
      (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
    );
    forms.post("/cart", { onRequest: requireUser }, async (request, reply) => {
      // CSRF: SameSite=Lax cookies come along with a form posted by another site of the same domain (here: the game,
      // on another port of the same host), so the Origin must be the shop's own.
      if (!app.tessera.isAllowedOrigin(request.headers.origin)) {
        return reply.code(403).send({ code: "CROSS_ORIGIN_REQUEST", message: "This request came from another site." });
      }
      const product = (request.body as Record<string, unknown> | undefined)?.product;
      if (typeof product !== "string" || !PRODUCTS.some((p) => p.id === product)) {
        return reply.code(400).send({ code: "VALIDATION_FAILED", message: "Unknown product." });
      }
      const user = request.user!;
      carts.set(user.id, [...(carts.get(user.id) ?? []), product].slice(-50));
      return reply.redirect("/", 303);
    });
  });

  return app;
}
