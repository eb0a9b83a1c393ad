/**
 * Moved to libraries/clients/ (input, registry, secrets). This re-export keeps the other branches' imports of
 * `libraries/clients.ts` compiling until they are switched to `libraries/clients/index.ts` at merge; then delete it.
 */
export * from "./clients/index.ts";
