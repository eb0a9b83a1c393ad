/** One email: always both a text and an HTML part. */
export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
  /** What the message is for (e.g. `verify_email`), for logs and tests. */
  kind: string;
}

/** Sends email. Production: Mailjet; development and tests: an in-memory outbox shown at /dev/outbox. */
export interface Mailer {
  readonly driver: "outbox" | "mailjet";
  send(message: MailMessage): Promise<void>;
}

export interface MailLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}
