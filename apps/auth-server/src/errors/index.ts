/** The one error model: the catalog, AppError (catalog JSON) and OAuthError (RFC `error` entries of the catalog). */
export { AppError, type ErrorBody, errorBody, type FieldError } from "./app-error.ts";
export {
  type ErrorCode,
  errorCatalog,
  type OAuthErrorCode,
  type TesseraOAuthCode,
  tesseraOAuthCodes,
} from "./catalog.ts";
export { OAuthError, OAuthPageError, toOAuthError } from "./oauth.ts";
