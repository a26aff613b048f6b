export { CancelChannel, type CancelChannelOptions, type CancelHandler } from './cancel-channel.js';
export { createRedis, whenReady, type RedisConnectionOptions } from './redis.js';
export {
  TASK_QUEUE_NAME,
  TaskQueue,
  bullPrefix,
  type QueueCounts,
  type TaskQueueOptions,
} from './task-queue.js';
export {
  createTaskWorker,
  type TaskProcessor,
  type TaskProcessorContext,
  type TaskWorkerOptions,
} from './task-worker.js';
// Re-exported so the worker app can refuse retries without depending on bullmq itself.
export { JobQueue, type JobWorker, type SideQueueName } from './job-queue.js';
export { ScheduleQueue, createScheduleWorker } from './schedule-queue.js';
export { startOutboxConsumer, type OutboxConsumerOptions } from './outbox-consumer.js';
