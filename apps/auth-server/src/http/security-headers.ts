import helmet from "@fastify/helmet";
import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import type { Config } from "../config/index.ts";

/**
 * Security headers on every response (helmet): CSP with frame-ancestors 'none', nosniff, a strict Referrer-Policy
 * (links carry tokens), HSTS only when served over https. Responses are `no-store` unless a route says otherwise:
 * an identity provider's pages and JSON nearly all hold something personal or secret.
 */
export const registerSecurityHeaders = (app: FastifyInstance, config: Config) =>
  app.register(
    fp(async (instance) => {
      await instance.register(helmet, {
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
      });
      instance.addHook("onSend", async (_request, reply, payload) => {
        if (!reply.hasHeader("cache-control")) reply.header("cache-control", "no-store");
        return payload;
      });
    }),
  );
