import type { Mailer, MailLogger, MailMessage } from "./types.ts";

export interface OutboxEntry extends MailMessage {
  id: number;
  at: Date;
}

/**
 * Development mailer: keeps messages in memory (newest last, at most `limit`) for /dev/outbox and logs that one
 * arrived (recipient, subject, kind), never its text: the links carry verification and reset tokens, and logs of a
 * development or staging server get copied and shipped too (SECURITY.md: no tokens in logs). Never used in production
 * (the config refuses MAIL_DRIVER=outbox there).
 */
export class OutboxMailer implements Mailer {
  readonly driver = "outbox" as const;
  readonly messages: OutboxEntry[] = [];
  private nextId = 1;

  constructor(
    private readonly log?: MailLogger,
    private readonly limit = 200,
  ) {}

  /** Stores the message before returning its promise, so a response sent right after is never ahead of the outbox. */
  send(message: MailMessage): Promise<void> {
    this.messages.push({ ...message, id: this.nextId++, at: new Date() });
    if (this.messages.length > this.limit) this.messages.splice(0, this.messages.length - this.limit);
    this.log?.info(
      { mail: { to: message.to, subject: message.subject, kind: message.kind } },
      "email kept in the development outbox: read it at /dev/outbox",
    );
    return Promise.resolve();
  }

  /** Messages sent to an address, newest first. */
  to(address: string): OutboxEntry[] {
    const wanted = address.toLowerCase();
    return this.messages.filter((m) => m.to.toLowerCase() === wanted).reverse();
  }

  clear(): void {
    this.messages.length = 0;
  }
}
