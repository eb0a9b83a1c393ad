import { describe, expect, it } from "vitest";
import { startDemo } from "../../../scripts/demo.ts";

describe("pnpm demo", () => {
  it("refuses to run in production mode (it creates a user with a printed password)", async () => {
    await expect(
      startDemo({
        env: {
          NODE_ENV: "production",
          ISSUER: "https://id.example.com",
          DATABASE_URL: "postgres://tessera@127.0.0.1:1/tessera",
          TESSERA_MASTER_KEY: "ab".repeat(32),
          MAIL_DRIVER: "mailjet",
          MAILJET_API_KEY: "key",
          MAILJET_API_SECRET: "secret",
        },
        stateFile: false,
      }),
    ).rejects.toThrow("pnpm demo creates a demo user with a known password and is refused in production mode");
  });
});
