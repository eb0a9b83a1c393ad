import { z } from "zod";

/**
 * The JSON the browser posts back (`PublicKeyCredential.toJSON()`, what @simplewebauthn/browser returns), checked for
 * shape and size before the library parses any of it. Built once at module load.
 */
const b64url = (max: number) =>
  z
    .string()
    .max(max)
    .regex(/^[A-Za-z0-9_-]*$/, { error: "Not base64url." });
const TRANSPORTS = ["ble", "cable", "hybrid", "internal", "nfc", "smart-card", "usb"] as const;

const registrationResponse = z.object({
  id: b64url(1400).min(1),
  rawId: b64url(1400).min(1),
  type: z.literal("public-key"),
  response: z.object({
    clientDataJSON: b64url(4096),
    attestationObject: b64url(16_384),
    transports: z.array(z.enum(TRANSPORTS)).max(8).optional(),
    authenticatorData: b64url(8192).optional(),
    publicKey: b64url(4096).optional(),
    publicKeyAlgorithm: z.number().int().optional(),
  }),
  authenticatorAttachment: z.enum(["platform", "cross-platform"]).optional(),
  clientExtensionResults: z.record(z.string(), z.unknown()).default({}),
});

const authenticationResponse = z.object({
  id: b64url(1400).min(1),
  rawId: b64url(1400).min(1),
  type: z.literal("public-key"),
  response: z.object({
    clientDataJSON: b64url(4096),
    authenticatorData: b64url(8192),
    signature: b64url(2048),
    userHandle: b64url(512).optional(),
  }),
  authenticatorAttachment: z.enum(["platform", "cross-platform"]).optional(),
  clientExtensionResults: z.record(z.string(), z.unknown()).default({}),
});

const passkeyName = z
  .string({ error: "Give the passkey a name." })
  .trim()
  .min(1, { error: "Give the passkey a name." })
  .max(60, { error: "Use at most 60 characters." });

/** A fresh password, or a code from the authenticator app (or a recovery code), typed again before a change. */
const reauth = {
  password: z.string().max(1024).optional(),
  code: z.string().trim().max(32).optional(),
};

export const passkeySchemas = {
  registrationOptions: z.object({ ...reauth }),
  registrationVerify: z.object({ credential: registrationResponse, name: passkeyName.optional() }),
  authenticationVerify: z.object({ credential: authenticationResponse }),
  rename: z.object({ name: passkeyName, ...reauth }),
  remove: z.object({ ...reauth }),
  id: z.object({ id: z.uuid({ error: "Unknown passkey." }) }),
};
