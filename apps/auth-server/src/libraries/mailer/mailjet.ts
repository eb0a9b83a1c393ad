// node-mailjet is CommonJS: its default export is the Mailjet class, whose static `Client` is the client class. It is
// loaded on first send: most processes (development, tests, the CLI) never send through Mailjet.
import type Mailjet from "node-mailjet";
import type { Mailer, MailMessage } from "./types.ts";

export interface MailjetSettings {
  apiKey: string;
  apiSecret: string;
  from: string;
  fromName: string;
  /**
   * Override of Mailjet's API location. An https URL replaces the host; an http URL (a local stub a test starts)
   * is used as a forward proxy, because node-mailjet always builds https URLs and cannot be pointed at plain http.
   */
  apiUrl?: string | undefined;
  timeoutMs?: number;
}

/** Production mailer: Mailjet's Send API v3.1 through the official node-mailjet client. */
export class MailjetMailer implements Mailer {
  readonly driver = "mailjet" as const;
  private client: Promise<InstanceType<typeof Mailjet.Client>> | undefined;

  constructor(private readonly settings: MailjetSettings) {}

  private connect(): Promise<InstanceType<typeof Mailjet.Client>> {
    const settings = this.settings;
    const override = settings.apiUrl ? new URL(settings.apiUrl) : undefined;
    this.client ??= import("node-mailjet").then(
      ({ default: MailjetClass }) =>
        new MailjetClass.Client({
          apiKey: settings.apiKey,
          apiSecret: settings.apiSecret,
          config: override?.protocol === "https:" ? { host: override.host } : null,
          options: {
            timeout: settings.timeoutMs ?? 10_000,
            ...(override?.protocol === "http:"
              ? {
                  proxy: {
                    protocol: "http",
                    host: override.hostname,
                    port: Number(override.port || 80),
                  },
                }
              : {}),
          },
        }),
    );
    return this.client;
  }

  async send(message: MailMessage): Promise<void> {
    const client = await this.connect();
    await client.post("send", { version: "v3.1" }).request({
      Messages: [
        {
          From: { Email: this.settings.from, Name: this.settings.fromName },
          To: [{ Email: message.to }],
          Subject: message.subject,
          TextPart: message.text,
          HTMLPart: message.html,
          CustomID: message.kind,
        },
      ],
    });
  }
}
