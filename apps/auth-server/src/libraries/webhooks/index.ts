/**
 * Signed webhooks to apps (issue #16): per-client endpoints (endpoints.ts), the transactional outbox (enqueue.ts),
 * Standard Webhooks signing (signing.ts) and admin views of deliveries (deliveries.ts). Delivery runs in
 * libraries/jobs/webhooks.ts.
 */

export { listWebhookDeliveries, redeliverWebhook } from "./deliveries.ts";
export {
  getWebhook,
  removeWebhook,
  rotateSecretBody,
  rotateWebhookSecret,
  setWebhook,
  WEBHOOK_EVENT_TYPES,
  type WebhookEndpointView,
  type WebhookEventType,
} from "./endpoints.ts";
export { enqueueRolesChanged, enqueueWebhook, type WebhookEvent } from "./enqueue.ts";
export { newWebhookSecret, signWebhook, webhookHeaders } from "./signing.ts";
