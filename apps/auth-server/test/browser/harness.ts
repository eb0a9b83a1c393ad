import type { AddressInfo } from "node:net";
import { createTestDatabase } from "@tessera/db/testing";
import type { FastifyInstance } from "fastify";
import type { BrowserContext, Page } from "playwright-core";
import { launchTestBrowser } from "../../../../test-support/chromium.ts";
import { testConfig } from "../../src/config/index.ts";
import { OutboxMailer } from "../../src/libraries/mailer/index.ts";
import { build } from "../contract.ts";

export interface BrowserSuite {
  app: FastifyInstance;
  /** Where Tessera listens: http://127.0.0.1:<port>. */
  base: string;
  context: BrowserContext;
  shot(page: Page, name: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Tessera listening on 127.0.0.1 (port 0) with the dev outbox (read at /dev/outbox), plus a real headless Chromium.
 * Rate limits and the response-time floor are off: a browser suite tests flows, the abuse suites test those.
 */
export async function startBrowserSuite(suite: string): Promise<BrowserSuite> {
  const database = await createTestDatabase();
  const app = await build(testConfig({ RATE_LIMIT_ENABLED: "false", ACCOUNT_RESPONSE_FLOOR_MS: "0" }), {
    database,
    mailer: new OutboxMailer(),
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const browser = await launchTestBrowser(suite);
  return {
    app,
    base: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    context: browser.context,
    shot: (page, name) => browser.shot(page, name),
    async close() {
      await browser.close();
      await app.close();
      await database.close();
    },
  };
}
