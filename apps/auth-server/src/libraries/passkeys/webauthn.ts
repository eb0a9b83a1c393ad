/**
 * @simplewebauthn/server, loaded on the first passkey ceremony: with its dependencies it is among the heaviest packages
 * the server imports, and most requests (and test files) never touch a passkey.
 */
let loaded: Promise<typeof import("@simplewebauthn/server")> | undefined;

export const webauthn = (): Promise<typeof import("@simplewebauthn/server")> =>
  (loaded ??= import("@simplewebauthn/server"));
