export { applyPatch, type ApplyPatchOptions, type ApplyPatchResult } from './apply-patch/apply.js';
export {
  isApplyPatchError,
  type AffectedPaths,
  type ApplyPatchErrorCode,
  type ApplyPatchErrorOptions,
} from './apply-patch/errors.js';
export type { PatchFileKind, PatchFileSystem } from './apply-patch/file-system.js';
export { LocalPatchFileSystem } from './apply-patch/local-file-system.js';

export { type Hunk, type ParsedPatch, type UpdateFileChunk } from './apply-patch/parser.js';

export {
  createModelClient,
  modelClientOptionsFromConfig,
  type AttemptFailure,
  type ModelClient,
  type ModelClientOptions,
  type ModelLogger,
  type ResolvedModelClientOptions,
  type RetryOptions,
  type TokenUsage,
  type ToolDefinition,
  type TurnEvent,
  type TurnRequest,
  type TurnResult,
} from './model/index.js';
export { Agent } from './loop/agent.js';
export { type AgentsMd, type AgentsMdOptions } from './loop/agents-md.js';
export { type AgentOptions, type ResolvedAgentOptions } from './loop/options.js';
export type {
  AgentOutcome,
  AgentRunInput,
  AgentStopReason,
  AgentTranscript,
} from './loop/types.js';

export { type SandboxPatchFileSystemOptions } from './tools/sandbox-file-system.js';
