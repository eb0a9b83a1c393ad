import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { TesseraWebhooks, type WebhookEvent } from "@tessera/sdk";
import type { FastifyInstance } from "fastify";
import { seedAdmin } from "../admin/helpers.ts";

/**
 * An app's webhook endpoint on 127.0.0.1, verifying with the SDK. `failures` answers 503 to the next N requests
 * (after verifying them); `hang` leaves the next request unanswered until `release()`; `hangAfterHandling` lets the SDK
 * handle the next request, then leaves it unanswered until `release()` (the app acted, but its answer is lost).
 * `handled` holds the events the SDK accepted (replays excluded); `requests` every request with its webhook-id and the
 * status answered (0: never answered; a replay the SDK refused as already handled is answered 200).
 */
export interface Receiver {
  url: string;
  requests: Array<{ id: string | undefined; status: number }>;
  handled: WebhookEvent[];
  failures: number;
  /** When set, `failures` applies only to this webhook-id. */
  failOnly: string | undefined;
  hang: boolean;
  hangAfterHandling: boolean;
  release(): void;
  setSecret(secret: string): void;
  close(): Promise<void>;
}

export async function startReceiver(now: () => number = Date.now): Promise<Receiver> {
  let webhooks: TesseraWebhooks | undefined;
  const hung: Array<() => void> = [];
  const receiver: Receiver = {
    url: "",
    requests: [],
    handled: [],
    failures: 0,
    failOnly: undefined,
    hang: false,
    hangAfterHandling: false,
    release: () => {
      for (const done of hung.splice(0)) done();
    },
    setSecret(secret) {
      webhooks = new TesseraWebhooks({ secret }, { sessionEnded: async () => {}, claimsChanged: () => {} }, now);
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const id = req.headers["webhook-id"] as string | undefined;
      if (receiver.hang) {
        receiver.hang = false;
        receiver.requests.push({ id, status: 0 });
        hung.push(() => res.destroy());
        return;
      }
      if (receiver.failures > 0 && (receiver.failOnly === undefined || receiver.failOnly === id)) {
        receiver.failures--;
        receiver.requests.push({ id, status: 503 });
        res.writeHead(503).end();
        return;
      }
      let status = 204;
      try {
        if (!webhooks) throw new Error("no secret");
        receiver.handled.push(await webhooks.verify({ headers: req.headers, body: Buffer.concat(chunks) }));
      } catch (error) {
        status = (error as { status?: number }).status ?? 500;
      }
      if (receiver.hangAfterHandling && status === 204) {
        receiver.hangAfterHandling = false;
        receiver.requests.push({ id, status: 0 });
        hung.push(() => res.destroy());
        return;
      }
      receiver.requests.push({ id, status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  return receiver;
}

/** Sets a client's webhook through the admin API and returns the secret shown once. */
export async function setWebhook(
  app: FastifyInstance,
  authorization: string,
  clientId: string,
  body: { url: string; events: string[] },
): Promise<string> {
  const response = await app.inject({
    method: "PUT",
    url: `/admin/api/v1/clients/${clientId}/webhook`,
    headers: { authorization },
    payload: body,
  });
  if (response.statusCode !== 200) throw new Error(`webhook PUT answered ${response.statusCode}: ${response.body}`);
  return response.json().secret as string;
}

export { seedAdmin };
