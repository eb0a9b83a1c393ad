import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto";
import { isoCBOR } from "@simplewebauthn/server/helpers";

/**
 * A software WebAuthn authenticator for inject tests: P-256 (ES256) keys, attestation `none`, real CBOR authenticator
 * data and real ECDSA signatures, so the server's checks (challenge, origin, RP ID hash, flags, signature, counter) run
 * on the same bytes a browser would send. It is the test's authenticator, not a mock of the server's library.
 */
const b64 = (bytes: Uint8Array | Buffer) => Buffer.from(bytes).toString("base64url");
const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest();

export interface SoftCredential {
  id: string;
  rpId: string;
  userHandle: string;
  privateKey: KeyObject;
  counter: number;
}

export interface Flags {
  uv?: boolean;
  backedUp?: boolean;
}

function flagsByte(f: Flags & { attested?: boolean }) {
  let b = 0x01; // UP
  if (f.uv ?? true) b |= 0x04;
  if (f.backedUp) b |= 0x08 | 0x10; // BE + BS
  if (f.attested) b |= 0x40;
  return b;
}

function counterBytes(n: number) {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(n);
  return out;
}

/** Answers `navigator.credentials.create()` for creation options (JSON form, as the server sends them). */
export function createCredential(
  options: { challenge: string; rp: { id?: string }; user: { id: string } },
  origin: string,
  flags: Flags = {},
): { credential: Record<string, unknown>; key: SoftCredential } {
  const rpId = options.rp.id ?? new URL(origin).hostname;
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = publicKey.export({ format: "jwk" });
  const cose = new Map<number, number | Uint8Array>([
    [1, 2],
    [3, -7],
    [-1, 1],
    [-2, new Uint8Array(Buffer.from(jwk.x as string, "base64url"))],
    [-3, new Uint8Array(Buffer.from(jwk.y as string, "base64url"))],
  ]);
  const credentialId = randomBytes(16);
  const idLength = Buffer.alloc(2);
  idLength.writeUInt16BE(credentialId.length);
  const authData = Buffer.concat([
    sha256(rpId),
    Buffer.from([flagsByte({ ...flags, attested: true })]),
    counterBytes(0),
    Buffer.alloc(16), // AAGUID: none
    idLength,
    credentialId,
    Buffer.from(isoCBOR.encode(cose)),
  ]);
  const clientData = Buffer.from(
    JSON.stringify({ type: "webauthn.create", challenge: options.challenge, origin, crossOrigin: false }),
  );
  const attestationObject = isoCBOR.encode(
    new Map<string, unknown>([
      ["fmt", "none"],
      ["attStmt", new Map()],
      ["authData", new Uint8Array(authData)],
    ]) as never,
  );
  const id = b64(credentialId);
  return {
    credential: {
      id,
      rawId: id,
      type: "public-key",
      response: {
        clientDataJSON: b64(clientData),
        attestationObject: b64(attestationObject),
        transports: ["internal"],
      },
      clientExtensionResults: {},
    },
    key: { id, rpId, userHandle: options.user.id, privateKey, counter: 0 },
  };
}

/** Answers `navigator.credentials.get()`: signs authenticatorData || SHA-256(clientDataJSON) with the key. */
export function assert(
  key: SoftCredential,
  challenge: string,
  origin: string,
  opts: Flags & { counter?: number; userHandle?: string | null } = {},
): Record<string, unknown> {
  const counter = opts.counter ?? key.counter + 1;
  key.counter = counter;
  const authData = Buffer.concat([sha256(key.rpId), Buffer.from([flagsByte(opts)]), counterBytes(counter)]);
  const clientData = Buffer.from(JSON.stringify({ type: "webauthn.get", challenge, origin, crossOrigin: false }));
  const signature = sign("sha256", Buffer.concat([authData, sha256(clientData)]), key.privateKey);
  const handle = opts.userHandle === undefined ? key.userHandle : opts.userHandle;
  return {
    id: key.id,
    rawId: key.id,
    type: "public-key",
    response: {
      clientDataJSON: b64(clientData),
      authenticatorData: b64(authData),
      signature: b64(signature),
      ...(handle ? { userHandle: handle } : {}),
    },
    clientExtensionResults: {},
  };
}
