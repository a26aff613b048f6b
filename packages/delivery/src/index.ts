export { Deliverer, type DelivererDeps } from './deliverer.js';
export type { DeliveryJob, DeliveryQueuePort } from './jobs.js';
export { startDeliveryConsumer } from './consumer.js';
export { credentialOf, forgeClient, forgeOf, type Forge, type ThreadRef } from './forges/index.js';
