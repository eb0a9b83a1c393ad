/** Tessera's signing keys: storage, rotation and publication (store.ts), and JWT signing and verification (jwt.ts). */
export { type SignOptions, signJwt, type VerifyOptions, verifyJwt } from "./jwt.ts";
export {
  ensureSigningKey,
  type KeyStatus,
  keyPublishWindowSeconds,
  listSigningKeys,
  maxTokenLifetimeSeconds,
  publicJwks,
  rotateSigningKey,
  SIGNING_ALGS,
  type SigningAlg,
} from "./store.ts";
