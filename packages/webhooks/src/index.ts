export type { WebhookJob, WebhookPayload } from './dispatcher.js';
export {
  DEFAULT_ROTATION_GRACE_SECONDS,
  EVENT_TYPES,
  WebhookRegistry,
  type DeliveryAttempt,
  type WebhookView,
} from './registry.js';
export { verifySignature } from './signature.js';
export { WebhookUrlPolicy, type CheckedWebhookUrl } from './url-policy.js';
export { startWebhookConsumer } from './consumer.js';
