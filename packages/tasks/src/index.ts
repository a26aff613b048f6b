export {
  TaskService,
  type CancelPort,
  type TaskDefaults,
  type TaskQueuePort,
  type TaskServiceDeps,
} from './service.js';
