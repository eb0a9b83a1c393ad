import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../src/config/index.ts";
import { createMailer, MailjetMailer, sendInBackground } from "../../src/libraries/mailer/index.ts";
import { accountEmail } from "../../src/libraries/mailer/messages.ts";

/** node-mailjet pointed at a local HTTP stub this test starts: the request it sends is Mailjet's Send API v3.1. */
interface Captured {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

let server: Server;
let stubUrl: string;
const captured: Captured[] = [];
let nextStatus = 200;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => {
      body += chunk.toString("utf8");
    });
    req.on("end", () => {
      captured.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      res.writeHead(nextStatus, { "content-type": "application/json" });
      res.end(
        nextStatus === 200
          ? JSON.stringify({ Messages: [{ Status: "success", To: [{ Email: "x", MessageID: 1 }] }] })
          : JSON.stringify({ ErrorMessage: "API key authentication/authorization failure", StatusCode: 401 }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  stubUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => new Promise<void>((resolve) => server.close(() => resolve())));

function mailjetConfig() {
  return testConfig({
    MAIL_DRIVER: "mailjet",
    MAILJET_API_KEY: "public-key",
    MAILJET_API_SECRET: "private-secret",
    MAILJET_API_URL: stubUrl,
    MAIL_FROM: "accounts@tessera.example",
    MAIL_FROM_NAME: "Tessera Test",
    ISSUER: "https://id.tessera.example",
  });
}

describe("MailjetMailer", () => {
  it("sends a v3.1 send request with basic auth, sender, recipient, text and HTML parts", async () => {
    const config = mailjetConfig();
    const mailer = createMailer(config);
    expect(mailer).toBeInstanceOf(MailjetMailer);
    captured.length = 0;
    nextStatus = 200;
    const message = accountEmail(config, { kind: "reset_password", to: "ada@example.com", token: "T".repeat(43) });
    await mailer.send(message);

    expect(captured).toHaveLength(1);
    const request = captured[0]!;
    expect(request.method).toBe("POST");
    expect(new URL(request.url, "https://api.mailjet.com").pathname).toBe("/v3.1/send");
    expect(request.headers.authorization).toBe(`Basic ${Buffer.from("public-key:private-secret").toString("base64")}`);
    expect(request.headers["content-type"]).toMatch(/^application\/json/);
    const body = JSON.parse(request.body);
    expect(body).toEqual({
      Messages: [
        {
          From: { Email: "accounts@tessera.example", Name: "Tessera Test" },
          To: [{ Email: "ada@example.com" }],
          Subject: "Reset your Tessera Test password",
          TextPart: message.text,
          HTMLPart: message.html,
          CustomID: "reset_password",
        },
      ],
    });
    // Links come from ISSUER, in both parts.
    expect(body.Messages[0].TextPart).toContain(`https://id.tessera.example/reset-password?token=${"T".repeat(43)}`);
    expect(body.Messages[0].HTMLPart).toContain(
      `href="https://id.tessera.example/reset-password?token=${"T".repeat(43)}"`,
    );
  });

  it("rejects when Mailjet refuses, and background sending logs the failure without the address", async () => {
    const config = mailjetConfig();
    const mailer = createMailer(config);
    nextStatus = 401;
    const message = accountEmail(config, { kind: "password_changed", to: "grace@example.com" });
    await expect(mailer.send(message)).rejects.toThrow();

    const logged: { obj: object; msg: string }[] = [];
    const log = {
      info: () => {},
      error: (obj: object, msg: string) => {
        logged.push({ obj, msg });
      },
    };
    sendInBackground(mailer, message, log);
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (let i = 0; i < 20 && logged.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(logged).toHaveLength(1);
    expect(logged[0]!.msg).toBe("email delivery failed");
    expect(JSON.stringify(logged[0]!.obj)).toContain("example.com");
    expect(JSON.stringify(logged[0]!.obj)).not.toContain("grace@");
    nextStatus = 200;
  });
});
