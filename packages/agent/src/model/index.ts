export {
  createModelClient,
  modelClientOptionsFromConfig,
  type ModelClientOptions,
  type ModelLogger,
  type ResolvedModelClientOptions,
} from './client.js';
export { type RetryOptions } from './retry.js';
export {
  AbortError,
  ConversationItem,
  FunctionCallItem,
  MessageItem,
  ModelWire,
  ReasoningEffort,
  ReasoningSummary,
  assistantText,
  functionCallOutput,
  functionCalls,
  isAbortError,
  messageText,
  reasoningText,
  userMessage,
  type AttemptFailure,
  type ModelClient,
  type TokenUsage,
  type ToolDefinition,
  type TurnEvent,
  type TurnRequest,
  type TurnResult,
} from './types.js';
export { UsageAccumulator, totalTokens } from './usage.js';
