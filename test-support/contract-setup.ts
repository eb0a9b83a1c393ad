import { afterAll } from "vitest";
import { takeContractProblems } from "./contract-registry.ts";

/**
 * /openapi.json is a contract every test file holds the server to: after the file's own hooks (this one is registered
 * first, and after-hooks run in reverse), any answer of an app built through the check that the document does not
 * describe fails the file (apps/auth-server/test/contract.ts says what is checked).
 */
afterAll(() => {
  const problems = [...new Set(takeContractProblems())];
  if (problems.length) {
    throw new Error(
      `answers /openapi.json does not describe (document them in apps/auth-server/src/http/openapi.ts):\n  ${problems.join("\n  ")}`,
    );
  }
});
