export { Deliverer, type DelivererDeps } from './deliverer.js';
export { OperatorCredentials } from './credentials.js';
export type { DeliveryJob, DeliveryQueuePort } from './jobs.js';
export { startDeliveryConsumer } from './consumer.js';
export { forHost, forgeClient, type Forge, type ThreadRef } from './forges/index.js';
