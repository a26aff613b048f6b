export {
  applyChunks,
  applyPatch,
  formatSummary,
  type ApplyPatchOptions,
  type ApplyPatchResult,
} from './apply-patch/apply.js';
export {
  APPLY_PATCH_ERROR_CODES,
  ApplyPatchError,
  isApplyPatchError,
  type AffectedPaths,
  type ApplyPatchErrorCode,
  type ApplyPatchErrorOptions,
} from './apply-patch/errors.js';
export type { PatchFileKind, PatchFileSystem } from './apply-patch/file-system.js';
export { LocalPatchFileSystem } from './apply-patch/local-file-system.js';
export { MemoryPatchFileSystem } from './apply-patch/memory-file-system.js';
export {
  parsePatch,
  type Hunk,
  type ParsedPatch,
  type UpdateFileChunk,
} from './apply-patch/parser.js';
export { normalizePatchPath } from './apply-patch/paths.js';
export {
  AbortError,
  ContentPart,
  ConversationItem,
  DEFAULT_BASE_URL,
  FunctionCallItem,
  FunctionCallOutputItem,
  InputTextPart,
  MessageItem,
  MessageRole,
  ModelWire,
  OpenAIModelClient,
  OutputTextPart,
  ReasoningEffort,
  ReasoningItem,
  ReasoningSummary,
  ReasoningTextPart,
  RefusalPart,
  SummaryTextPart,
  UsageAccumulator,
  addUsage,
  assistantText,
  backoffDelay,
  createModelClient,
  createOpenAI,
  emptyUsage,
  functionCallOutput,
  functionCalls,
  isAbortError,
  messageText,
  modelClientOptionsFromConfig,
  parseRetryAfter,
  reasoningText,
  resolveModelClientOptions,
  resolveRetryOptions,
  totalTokens,
  userMessage,
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
export { loadAgentsMd, type AgentsMd, type AgentsMdOptions } from './loop/agents-md.js';
export {
  resolveAgentOptions,
  type AgentOptions,
  type ResolvedAgentOptions,
} from './loop/options.js';
export type {
  AgentOutcome,
  AgentRunInput,
  AgentStopReason,
  AgentTranscript,
} from './loop/types.js';
export { COMPACTION_PROMPT } from './prompts/compaction.js';
export { SYSTEM_PROMPT } from './prompts/system.js';
export {
  SandboxPatchFileSystem,
  type SandboxPatchFileSystemOptions,
} from './tools/sandbox-file-system.js';
export { WORKSPACE } from './tools/workspace.js';
