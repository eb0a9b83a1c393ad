import type { IncomingMessage, ServerResponse } from "node:http";
import type { FastifyInstance, FastifyReply } from "fastify";
import fp from "fastify-plugin";
import helmet, { type HelmetOptions } from "helmet";
import type { Config } from "../config/index.ts";

/** Helmet's settings: CSP with frame-ancestors 'none', nosniff, a strict Referrer-Policy, HSTS only over https. */
function helmetOptions(config: Config): Readonly<HelmetOptions> {
  return {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        baseUri: ["'none'"],
        objectSrc: ["'none'"],
        frameAncestors: ["'none'"],
        imgSrc: ["'self'", "https:", "data:"],
        styleSrc: ["'self'"],
        scriptSrc: ["'self'"],
        // No form-action: Chrome applies it to the redirect after a form post, which would block the return to
        // a client's registered redirect URI after sign-in.
      },
    },
    referrerPolicy: { policy: "no-referrer" },
    strictTransportSecurity: config.issuer.startsWith("https://")
      ? { maxAge: 31_536_000, includeSubDomains: true }
      : false,
    crossOriginEmbedderPolicy: false,
    frameguard: { action: "deny" },
    crossOriginResourcePolicy: { policy: "same-origin" },
  };
}

/**
 * The headers helmet sets with these options, computed once: helmet's middleware run against a recording response.
 * They depend on the configuration only (no CSP nonces here), so every response gets the same set. @fastify/helmet
 * (used before) built helmet's whole middleware again on every request, in two hooks of its own: ~4% of a
 * `/introspect` request's CPU in a profile.
 */
export function securityHeaders(config: Config): Readonly<Record<string, string>> {
  const headers: Record<string, string> = {};
  const recorder = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : String(value);
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()];
    },
  };
  let failure: unknown;
  helmet(helmetOptions(config))({} as IncomingMessage, recorder as unknown as ServerResponse, (error?: unknown) => {
    failure = error;
  });
  if (failure) throw failure;
  return Object.freeze(headers);
}

/** Sets the security headers and the no-store default on a reply (a route's own headers set later override them). */
export function applySecurityHeaders(reply: FastifyReply, headers: Readonly<Record<string, string>>): void {
  reply.headers(headers);
  reply.header("cache-control", "no-store");
}

/**
 * Security headers on every response (the set above), and `no-store` unless a route says otherwise: an identity
 * provider's pages and JSON nearly all hold something personal or secret. Both are set before the route runs, so a
 * route's own `reply.header()` overrides them; the `onSend` check covers answers that skipped the `onRequest` hook.
 * A malformed URL is answered before any hook runs: app.ts's framework error handler applies the same set.
 */
export const registerSecurityHeaders = (app: FastifyInstance, config: Config) =>
  app.register(
    fp(async (instance) => {
      const headers = securityHeaders(config);
      const apply = (reply: FastifyReply) => applySecurityHeaders(reply, headers);
      instance.addHook("onRequest", (_request, reply, done) => {
        apply(reply);
        done();
      });
      instance.addHook("onSend", (_request, reply, payload, done) => {
        if (!reply.hasHeader("content-security-policy")) {
          const own = reply.getHeader("cache-control");
          apply(reply);
          if (own !== undefined) reply.header("cache-control", own);
        }
        done(null, payload);
      });
    }),
  );
