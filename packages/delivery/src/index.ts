export {
  DELIVERY_TOKEN_TTL_SECONDS,
  Deliverer,
  pullRequestBody,
  type DelivererDeps,
} from './deliverer.js';
export {
  DeliveryTrigger,
  deliveryBackoff,
  type DeliveryJob,
  type DeliveryQueuePort,
} from './jobs.js';
export {
  forgeClient,
  type Forge,
  type PullRequestInput,
  type PullRequestRef,
} from './forges/index.js';
