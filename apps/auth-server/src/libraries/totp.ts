/**
 * Compatibility exports for modules outside the accounts/MFA area that still import `libraries/totp.ts`
 * (oauth/tokens.ts, oauth/authorize.ts, routes/discovery.ts). The second factor lives in `libraries/mfa/`, the ACR
 * rules in `libraries/oauth/acr.ts`; switch those imports and delete this file.
 */

export { hasConfirmedTotp } from "./mfa/factor.ts";
export { ACR_VALUES_SUPPORTED, acrFor, acrValuesDemandSecondFactor } from "./oauth/acr.ts";
