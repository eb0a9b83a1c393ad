import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import { AppError } from "../../errors/index.ts";
import { csrfPlugin } from "../../http/csrf.ts";
import { brandStylesheet, clientBranding } from "../../libraries/branding.ts";
import { sha256 } from "../../libraries/crypto.ts";
import { OutboxMailer } from "../../libraries/mailer/index.ts";
import { publicDir } from "../../paths.ts";
import { accountPages } from "./account.ts";
import { accountConsentPages } from "./account-consents.ts";
import { accountTermsGate, accountTermsPages } from "./account-terms.ts";
import { emailLinkPages } from "./email-links.ts";
import { exportPages } from "./export.ts";
import { federationPages } from "./federation.ts";
import { mfaPages } from "./mfa.ts";
import { passkeyPages } from "./passkeys.ts";
import { renderErrorPage, renderPage } from "./render.ts";
import { signInPages } from "./sign-in.ts";

/**
 * Tessera's hosted pages: sign-in, registration, email links, password reset, the account page, the static CSS and,
 * outside production, the development outbox. Installs the CSRF plugin (app-wide, so other areas' forms can use
 * `app.csrfProtection` and `reply.generateCsrf()`) and the HTML error page.
 */
export const pageRoutes = fp(async (app: FastifyInstance) => {
  await app.register(csrfPlugin);
  app.setHtmlErrorRenderer(renderErrorPage);
  // Before any account route: a newer terms version is accepted before the account pages are used (#16).
  app.addHook("preHandler", accountTermsGate(app));
  await app.register(staticAssets);
  await app.register(signInPages);
  await app.register(emailLinkPages);
  await app.register(accountPages);
  await app.register(accountConsentPages);
  await app.register(accountTermsPages);
  await app.register(mfaPages);
  await app.register(exportPages);
  await app.register(federationPages);
  await app.register(passkeyPages);
  if (app.ctx.config.env !== "production") await app.register(devOutbox);
});

const TYPES: Record<string, string> = {
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

/**
 * /assets/<file>: the files of src/public, read once at start into memory (a handful of small files). Only names in
 * that directory can be served, so no path from the URL ever reaches the file system.
 */
async function staticAssets(app: FastifyInstance): Promise<void> {
  const files = new Map<string, { body: Buffer; type: string; etag: string }>();
  for (const name of readdirSync(publicDir)) {
    const ext = name.slice(name.lastIndexOf("."));
    const type = TYPES[ext];
    if (!type) continue;
    const body = readFileSync(join(publicDir, name));
    files.set(name, { body, type, etag: `"${sha256(body.toString("base64")).slice(0, 16)}"` });
  }
  // A client's colour as a stylesheet (see libraries/branding.ts): unknown, disabled or colourless clients are 404.
  app.get("/assets/brand/:file", async (request, reply) => {
    const file = (request.params as { file: string }).file;
    const clientId = file.endsWith(".css") ? file.slice(0, -".css".length) : "";
    const branding = clientId && clientId.length <= 200 ? await clientBranding(app.ctx, clientId) : null;
    if (!branding?.brandColor) throw new AppError("NOT_FOUND");
    return reply
      .header("cache-control", "public, max-age=300")
      .type("text/css; charset=utf-8")
      .send(brandStylesheet(branding.brandColor));
  });
  app.get("/assets/:file", async (request, reply) => {
    const file = files.get((request.params as { file: string }).file);
    if (!file) throw new AppError("NOT_FOUND");
    reply.header("cache-control", "public, max-age=3600").header("etag", file.etag).type(file.type);
    if (request.headers["if-none-match"] === file.etag) return reply.code(304).send();
    return reply.send(file.body);
  });
}

/**
 * GET /dev/outbox: the emails the development outbox holds, newest first. Never registered in production. Whoever
 * reads it holds every reset link, so it answers only the loopback interface: a development or staging server that
 * is reachable from a network (NODE_ENV left unset, say) does not hand every account to its visitors.
 */
async function devOutbox(app: FastifyInstance): Promise<void> {
  app.get("/dev/outbox", { config: { errorFormat: "html" } }, async (request, reply) => {
    if (!isLoopback(request.ip)) throw new AppError("NOT_FOUND");
    const mailer = app.ctx.mailer;
    const messages = mailer instanceof OutboxMailer ? [...mailer.messages].reverse() : [];
    return renderPage(request, reply, "outbox", {
      title: "Development outbox",
      wide: true,
      messages: messages.map((m) => ({
        to: m.to,
        subject: m.subject,
        kind: m.kind,
        at: m.at.toISOString(),
        text: m.text,
        // Links are shown relative, so they work on whatever host and port serves this page.
        links: [...m.text.matchAll(/https?:\/\/\S+/g)].map((match) => {
          const url = new URL(match[0]);
          return url.pathname + url.search;
        }),
      })),
    });
  });
}

/** 127.0.0.0/8, ::1, or an IPv4-mapped loopback address. */
export function isLoopback(ip: string): boolean {
  const v4 = ip.startsWith("::ffff:") ? ip.slice("::ffff:".length) : ip;
  return ip === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}
