/**
 * The client registry: validated registrations (input.ts), their lifecycle with audit rows (registry.ts), and client
 * ids, secrets and client authentication (secrets.ts). The admin API's wire names live in routes/admin.
 */
export type { ClientRow } from "../../queries/clients.ts";
export {
  type ClientInput,
  type ClientUpdate,
  DEFAULT_SCOPES,
  MAX_URI_LENGTH,
  MAX_URIS,
  registeredUriProblem,
  type SigningAlg,
  type TokenEndpointAuthMethod,
  type UntrustedClientInput,
  webOriginProblem,
} from "./input.ts";
export { isRegisteredWebOrigin, originOf, originRefused } from "./origins.ts";
export {
  type Actor,
  createClient,
  createPublicClient,
  disableClient,
  enableClient,
  getClient,
  listClients,
  rotateClientSecret,
  updateClient,
} from "./registry.ts";
export { authenticateClient, findActiveClient, identifyPublicClient } from "./secrets.ts";
