export { Deliverer, type DelivererDeps } from './deliverer.js';
export {
  DeliveryTrigger,
  deliveryBackoff,
  type DeliveryJob,
  type DeliveryQueuePort,
} from './jobs.js';
