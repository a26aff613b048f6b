export {
  ConfigError,
  loadConfig,
  redactConfig,
  type ApiKey,
  type Config,
  type ConfiguredWebhook,
  type Env,
  type ForgeConfig,
  type ForgeKind,
  type GitCredential,
  type GitHubApp,
  Integration,
} from './config.js';
export { Batcher } from './batch.js';
export { deferToTurnEnd } from './turn-end.js';
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
  AgentRuntime,
  Attempt,
  DEFAULT_CACHE_KEY,
  Delivery,
  DeliveryRequest,
  EMPTY_USAGE,
  FileChange,
  FollowUp,
  ReasoningEffort,
  CLIENT_ORIGINS,
  Task,
  TaskOrigin,
  TaskPhase,
  TaskResult,
  TaskSpec,
  TaskStatus,
  TaskView,
  Timings,
  type TurnResult,
  Usage,
  VerifyResult,
  attemptLogId,
  chosenAttempt,
  currentTurn,
  newTurn,
  isTerminal,
  lastResultTurn,
  modelOfAttempt,
  patchArtifactOf,
  toView,
  withAttempt,
  withCurrentTurn,
  withUsageTotals,
} from './task.js';
export { selectAttempt } from './selection.js';
export {
  EVENT_TEXT_LIMIT,
  PlanStep,
  TaskEvent,
  TaskEventBody,
  capText,
  type TaskEventType,
} from './events.js';
export { bearerToken, presentsSecret, tenantForKey } from './auth.js';
export {
  HostSyntaxError,
  normaliseHost,
  parseHostRule,
  type HostRule,
  type HostScheme,
} from './hosts.js';
export {
  formatIPv6,
  parseIPv4Loose,
  parseIPv6,
  specialRangeOf,
  specialRangeOfAnswer,
  type SpecialAddressKind,
  type SpecialRange,
} from './ip.js';
export { silentLogger, type Logger } from './logger.js';
export { LifecycleEvent, lifecycleEventOf, type LifecycleEventType } from './lifecycle.js';
export { retryPolicy, type FailureVerdict, type RunStop } from './retry.js';
export { Schedule, ScheduleRun, ScheduleSpec, ScheduleView } from './schedule.js';
