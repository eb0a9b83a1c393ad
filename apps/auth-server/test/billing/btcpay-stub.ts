import { createHmac, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A local stand-in for BTCPay Server's Greenfield API (tests only): creates and serves invoices for one store,
 * checks the `Authorization: token …` header, and signs webhook deliveries as BTCPay does
 * (`BTCPay-Sig: sha256=<hex HMAC-SHA256 of the raw body>`).
 */
export interface BtcpayStub {
  url: string;
  storeId: string;
  apiKey: string;
  webhookSecret: string;
  invoices: Map<string, Record<string, unknown>>;
  created: Record<string, unknown>[];
  delivery(
    type: string,
    invoiceId: string,
    extra?: Record<string, unknown>,
  ): { payload: string; signature: string; deliveryId: string };
  close(): Promise<void>;
}

export async function startBtcpayStub(): Promise<BtcpayStub> {
  const storeId = `store${randomBytes(4).toString("hex")}`;
  const apiKey = randomBytes(16).toString("hex");
  const webhookSecret = randomBytes(16).toString("hex");
  const invoices = new Map<string, Record<string, unknown>>();
  const created: Record<string, unknown>[] = [];
  let base = "";
  const server: Server = createServer(async (req, res) => {
    let raw = "";
    for await (const chunk of req) raw += chunk;
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.headers.authorization !== `token ${apiKey}`) return send(401, { code: "unauthenticated" });
    const prefix = `/api/v1/stores/${storeId}/invoices`;
    if (req.url === prefix && req.method === "POST") {
      const body = JSON.parse(raw) as Record<string, unknown>;
      created.push(body);
      const id = randomBytes(8).toString("hex");
      const invoice = { id, storeId, status: "New", checkoutLink: `${base}/i/${id}`, ...body };
      invoices.set(id, invoice);
      return send(200, invoice);
    }
    if (req.url?.startsWith(`${prefix}/`) && req.method === "GET") {
      const invoice = invoices.get(req.url.slice(prefix.length + 1));
      return invoice ? send(200, invoice) : send(404, { code: "invoice-not-found" });
    }
    return send(404, { code: "not-found" });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    storeId,
    apiKey,
    webhookSecret,
    invoices,
    created,
    delivery(type, invoiceId, extra = {}) {
      const deliveryId = randomBytes(8).toString("hex");
      const payload = JSON.stringify({
        deliveryId,
        webhookId: "wh1",
        originalDeliveryId: deliveryId,
        isRedelivery: false,
        type,
        timestamp: Math.floor(Date.now() / 1000),
        storeId,
        invoiceId,
        metadata: invoices.get(invoiceId)?.metadata ?? {},
        ...extra,
      });
      const signature = `sha256=${createHmac("sha256", webhookSecret).update(payload).digest("hex")}`;
      return { payload, signature, deliveryId };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
