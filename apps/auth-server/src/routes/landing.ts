import type { FastifyInstance } from "fastify";
import { renderPage } from "./pages/render.ts";

/** Where the API documentation is served, when an area registers it (linked from the landing page only then). */
const DOCS_PATH = "/docs";

/**
 * GET /: what this service is, with links to sign in, the account page, discovery and the docs, instead of a JSON 404
 * for whoever opens the issuer's URL in a browser. Static apart from the product name and issuer.
 */
export async function landingRoutes(app: FastifyInstance): Promise<void> {
  app.get("/", { config: { errorFormat: "html" } }, async (request, reply) => {
    const docs = app.hasRoute({ method: "GET", url: DOCS_PATH }) ? DOCS_PATH : undefined;
    return renderPage(request, reply, "landing", {
      title: app.ctx.config.mail.fromName,
      issuer: app.ctx.config.issuer,
      docs,
    });
  });
}
