export {
  ConfigError,
  EnvSchema,
  SECRET_VARIABLES,
  loadConfig,
  redactConfig,
  redactUrl,
  type ApiKey,
  type Config,
  type Env,
} from './config.js';
export { StartupError, runMain } from './main.js';
export {
  ERROR_CODES,
  PatchbayError,
  httpStatusFor,
  isPatchbayError,
  type ErrorCode,
  type PatchbayErrorOptions,
} from './errors.js';
export {
  ARTIFACTS,
  EMPTY_USAGE,
  FileChange,
  ReasoningEffort,
  SPEC_LIMITS,
  TERMINAL_STATUSES,
  Task,
  TaskError,
  TaskPhase,
  TaskResult,
  TaskSpec,
  TaskStatus,
  Usage,
  VerifyResult,
  isTerminal,
} from './task.js';
export {
  EVENT_TEXT_LIMIT,
  PlanStep,
  TaskEvent,
  TaskEventBody,
  capText,
  type TaskEventType,
} from './events.js';
export { tenantForKey } from './auth.js';
