export type { ArtifactStore, EventLog, TaskListQuery, TaskPage, TaskStore } from './types.js';
export { FsArtifactStore, type FsArtifactStoreOptions } from './fs-artifact-store.js';
export { RedisEventLog, type RedisEventLogOptions } from './redis-event-log.js';
export { RedisTaskStore, type RedisTaskStoreOptions } from './redis-task-store.js';
export { TaskLifecycle, type TaskOutcome } from './lifecycle.js';
export { OutboxReader, type OutboxEntry, type OutboxReaderOptions } from './outbox-reader.js';
export { RedisEnvironmentIndex, type EnvironmentRecord } from './environment-index.js';
export { readArtifact } from './read-artifact.js';
export { WorkerRegistry, type SandboxHolder } from './worker-registry.js';
