import type { AppContext } from "../../context.ts";

/**
 * Starts a wall-clock floor: the returned function waits until `responseFloorMs` have passed since the start. Register
 * and forgot-password do different database work for known and unknown emails; waiting out the same floor on every
 * path keeps that difference out of the response time (SECURITY.md: no enumeration by timing).
 */
export function responseFloor(ctx: AppContext): () => Promise<void> {
  const started = performance.now();
  return async () => {
    const remaining = ctx.config.passwords.responseFloorMs - (performance.now() - started);
    if (remaining > 0) await new Promise((resolve) => setTimeout(resolve, remaining));
  };
}
