export { collectPatch, type CollectedPatch } from './collect.js';
export { type OutputSinkOptions } from './output.js';
export { SandboxKeeper, type KeptRegistry, type SandboxKeeperOptions } from './keeper.js';
export { Pipeline, type PipelineDeps, type PipelineOptions, type RunContext } from './pipeline.js';
export type {
  AgentOutcome,
  AgentRunInput,
  AgentRunner,
  AgentStopReason,
  RepoSource,
} from './ports.js';
export { EnvironmentCache, type EnvironmentCacheOptions } from './environments.js';
export { S3Snapshots } from './shared-snapshots.js';
