export {
  TaskService,
  type CancelPort,
  type TaskDefaults,
  type TaskQueuePort,
  type TaskServiceDeps,
} from './service.js';
export { ScheduleService, type ScheduleQueuePort, type ScheduleServiceDeps } from './schedules.js';
