/** Authentication strength for OpenID clients (`acr_values` in, `acr` out), from the session's `amr`. */

/** A sign-in with one factor (a password). */
export const ACR_SINGLE_FACTOR = "urn:tessera:acr:sfa";
/** A sign-in with a password and a second factor (`amr` has `otp`). */
export const ACR_MULTI_FACTOR = "urn:tessera:acr:mfa";
/** The PAPE multi-factor policy URI, accepted as a synonym because many client libraries know it. */
const PAPE_MULTI_FACTOR = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
export const ACR_VALUES_SUPPORTED = [ACR_SINGLE_FACTOR, ACR_MULTI_FACTOR];

/** The `acr` of a session, from its `amr`. */
export function acrFor(amr: readonly string[]): string {
  return isMultiFactor(amr) ? ACR_MULTI_FACTOR : ACR_SINGLE_FACTOR;
}

/** Two factors were shown: a code after the password, or `mfa` (a passkey after the password, or with its UV). */
export function isMultiFactor(amr: readonly string[]): boolean {
  return amr.includes("otp") || amr.includes("mfa");
}

/**
 * Whether `acr_values` demand a second factor: at least one value we know is requested and every value we know needs
 * a second factor (a client that also lists the single-factor value accepts it). Unknown values are ignored.
 */
export function acrValuesDemandSecondFactor(acrValues: string | undefined): boolean {
  const known = (acrValues ?? "")
    .split(" ")
    .filter((v) => v === ACR_SINGLE_FACTOR || v === ACR_MULTI_FACTOR || v === PAPE_MULTI_FACTOR);
  return known.length > 0 && !known.includes(ACR_SINGLE_FACTOR);
}
