export { CancelChannel, type CancelChannelOptions, type CancelHandler } from './cancel-channel.js';
export { createRedis, whenReady, type RedisConnectionOptions } from './redis.js';
export {
  TASK_QUEUE_NAME,
  TaskJobData,
  TaskQueue,
  bullPrefix,
  checkTaskId,
  type QueueCounts,
  type TaskQueueOptions,
} from './task-queue.js';
export {
  TaskWorker,
  createTaskWorker,
  isHandBackAbort,
  type TaskProcessor,
  type TaskProcessorContext,
  type TaskWorkerOptions,
} from './task-worker.js';
// Re-exported so the worker app can refuse retries without depending on bullmq itself.
export { UnrecoverableError } from 'bullmq';
