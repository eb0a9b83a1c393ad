import type { Config } from "../../config/index.ts";
import { MailjetMailer } from "./mailjet.ts";
import { OutboxMailer } from "./outbox.ts";
import type { Mailer, MailLogger, MailMessage } from "./types.ts";

export { MailjetMailer } from "./mailjet.ts";
export { type OutboxEntry, OutboxMailer } from "./outbox.ts";
export type { Mailer, MailLogger, MailMessage } from "./types.ts";

/** The mailer the configuration asks for. */
export function createMailer(config: Config, log?: MailLogger): Mailer {
  if (config.mail.driver === "mailjet") {
    const { mailjetApiKey, mailjetApiSecret } = config.mail;
    // loadConfig already refuses MAIL_DRIVER=mailjet without both; this guards programmatic configs.
    if (!mailjetApiKey || !mailjetApiSecret)
      throw new TypeError("Mailjet needs MAILJET_API_KEY and MAILJET_API_SECRET");
    return new MailjetMailer({
      apiKey: mailjetApiKey,
      apiSecret: mailjetApiSecret,
      from: config.mail.from,
      fromName: config.mail.fromName,
      apiUrl: config.mail.mailjetApiUrl,
    });
  }
  return new OutboxMailer(log);
}

/**
 * Sends without making the request wait for the provider: the response time must not depend on whether an email went
 * out (that would tell whether an address has an account), and a slow provider must not slow sign-up. Failures are
 * logged with the recipient's domain only.
 */
export function sendInBackground(mailer: Mailer, message: MailMessage, log: MailLogger): void {
  mailer.send(message).catch((error: unknown) => {
    log.error(
      {
        mail: { kind: message.kind, domain: message.to.split("@").pop() },
        err: { message: error instanceof Error ? error.message : String(error) },
      },
      "email delivery failed",
    );
  });
}
