export * from "./abuse.ts";
export * from "./audit.ts";
export * from "./authorization.ts";
export * from "./clients.ts";
export * from "./keys.ts";
export * from "./passkeys.ts";
export * from "./sessions.ts";
export * from "./users.ts";
