export { collectPatch, parseChanges, splitRawNumstat, type CollectedPatch } from './collect.js';
export { EventWriter } from './event-writer.js';
export { OutputSink, type OutputSinkOptions } from './output.js';
export {
  HandBack,
  Pipeline,
  type Logger,
  type PipelineDeps,
  type PipelineOptions,
  type RunContext,
} from './pipeline.js';
export type {
  AgentOutcome,
  AgentRunInput,
  AgentRunner,
  AgentStopReason,
  RepoSource,
} from './ports.js';
