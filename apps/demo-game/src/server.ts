import { buildDemoGame } from "./app.ts";

/** Standalone start: `TESSERA_ISSUER`, `CLIENT_ID`, `CLIENT_SECRET`, `APP_SECRET`, `PUBLIC_URL`, `PORT`. */
const env = process.env;
const missing = ["TESSERA_ISSUER", "CLIENT_ID", "CLIENT_SECRET", "APP_SECRET"].filter((name) => !env[name]);
if (missing.length) {
  process.stderr.write(`demo-game: set ${missing.join(", ")} (or run \`pnpm demo\`, which does it all)\n`);
  process.exit(78);
}
const port = Number(env.PORT ?? 4002);
const app = await buildDemoGame({
  issuer: env.TESSERA_ISSUER!,
  clientId: env.CLIENT_ID!,
  clientSecret: env.CLIENT_SECRET!,
  appSecret: env.APP_SECRET!,
  publicUrl: env.PUBLIC_URL ?? `http://localhost:${port}`,
  shopUrl: env.SHOP_URL,
  webhookSecret: env.WEBHOOK_SECRET,
  logger: true,
});
await app.listen({ port, host: env.HOST ?? "127.0.0.1" });
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.once(signal, () => void app.close().then(() => process.exit(0)));
