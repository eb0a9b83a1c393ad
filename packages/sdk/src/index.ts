export {
  type AccessClaims,
  AccessTokenCodec,
  type ClaimsInput,
  type TesseraUser,
  type VerifyResult,
} from "./access-token.ts";
export { createTessera, TesseraClient } from "./client.ts";
export { errorCodes, TesseraConfigError, TesseraError, type TesseraErrorCode } from "./errors.ts";
export {
  authHeaders,
  authInputFrom,
  checkAccess,
  createHandler,
  DEFAULT_ROUTES,
  errorResponse,
  type HandlerRequest,
  type HandlerResponse,
  ROUTE_METHODS,
  type RouteName,
  type RoutePaths,
  type TesseraHandler,
} from "./handler.ts";
export type { CookieNames, TesseraOptions } from "./options.ts";
export { safeReturnTo } from "./return-to.ts";
export { MemoryRevokedSessionStore, type RevokedSessionStore } from "./revocation.ts";
export type {
  AuthInput,
  AuthResult,
  CallbackResult,
  LoginInput,
  LoginResult,
  LogoutResult,
  SessionRevokedEvent,
} from "./types.ts";
export {
  TesseraWebhooks,
  type WebhookEvent,
  type WebhookEventType,
  type WebhookOptions,
  type WebhookRequest,
} from "./webhooks.ts";
