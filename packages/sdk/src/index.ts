export {
  type AccessClaims,
  AccessTokenCodec,
  type ClaimsInput,
  type TesseraUser,
  type VerifyResult,
} from "./access-token.ts";
export {
  type AuthInput,
  type AuthResult,
  type CallbackResult,
  createTessera,
  type LoginResult,
  type LogoutResult,
  type SessionRevokedEvent,
  TesseraClient,
} from "./client.ts";
export { errorCodes, TesseraConfigError, TesseraError, type TesseraErrorCode } from "./errors.ts";
export type { CookieNames, TesseraOptions } from "./options.ts";
export { safeReturnTo } from "./return-to.ts";
export { MemoryRevokedSessionStore, type RevokedSessionStore } from "./revocation.ts";
