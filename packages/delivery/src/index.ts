export { Deliverer, type DelivererDeps } from './deliverer.js';
export type { DeliveryJob, DeliveryQueuePort } from './jobs.js';
export { startDeliveryConsumer } from './consumer.js';
