/**
 * The OAuth error classes live in the one error model (src/errors: catalog entries with RFC `error` names). This
 * module re-exports them so existing `./errors.ts` imports under libraries/oauth keep working.
 */
export {
  OAuthError,
  type OAuthErrorCode,
  OAuthPageError,
  type TesseraOAuthCode,
} from "../../errors/index.ts";
