import { z } from 'zod';
import { ERROR_CODES } from './errors.js';

/** Request-size limits of a task spec; documented in the OpenAPI schema through zod. */
const SPEC_LIMITS = {
  urlLength: 2048,
  refLength: 256,
  promptBytes: 64 * 1024,
  scriptBytes: 64 * 1024,
  envEntries: 64,
  envValueBytes: 8 * 1024,
} as const;

export const TaskStatus = z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled']);
export type TaskStatus = z.infer<typeof TaskStatus>;
const TERMINAL_STATUSES: readonly TaskStatus[] = ['succeeded', 'failed', 'cancelled'];
export function isTerminal(status: TaskStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

export const TaskPhase = z.enum([
  'fetch',
  'provision',
  'setup',
  'agent',
  'collect',
  'verify',
  'publish',
]);
export type TaskPhase = z.infer<typeof TaskPhase>;

export const ReasoningEffort = z.enum(['minimal', 'low', 'medium', 'high']);
export type ReasoningEffort = z.infer<typeof ReasoningEffort>;

/** UTF-8 byte length, so limits mean the same for every script. */
const maxBytes = (limit: number) => (s: string) => Buffer.byteLength(s, 'utf8') <= limit;

const EnvName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'must be a shell variable name: letters, digits, _');
const EnvMap = z
  .record(
    EnvName,
    z
      .string()
      .refine(maxBytes(SPEC_LIMITS.envValueBytes), `at most ${SPEC_LIMITS.envValueBytes} bytes`)
      .refine((s) => !s.includes('\0'), 'must not contain NUL'),
  )
  .refine(
    (m) => Object.keys(m).length <= SPEC_LIMITS.envEntries,
    `at most ${SPEC_LIMITS.envEntries} entries`,
  );

const Script = z
  .string()
  .min(1)
  .refine(maxBytes(SPEC_LIMITS.scriptBytes), `at most ${SPEC_LIMITS.scriptBytes} bytes`)
  .refine((s) => !s.includes('\0'), 'must not contain NUL');

/** What a client submits. Unknown fields are refused rather than silently ignored. */
export const TaskSpec = z
  .strictObject({
    repo: z.strictObject({
      url: z.string().min(1).max(SPEC_LIMITS.urlLength).describe('Repository URL (https://…).'),
      ref: z
        .string()
        .min(1)
        .max(SPEC_LIMITS.refLength)
        .optional()
        .describe('Branch, tag or commit; the default branch when absent.'),
    }),
    prompt: z
      .string()
      .min(1)
      .refine(maxBytes(SPEC_LIMITS.promptBytes), `at most ${SPEC_LIMITS.promptBytes} bytes`)
      .refine((s) => s.trim().length > 0, 'must not be blank')
      .describe('The task, in plain words.'),
    environment: z
      .strictObject({
        image: z
          .string()
          .regex(/^[a-z0-9][a-z0-9._/:@-]{0,254}$/, 'must be a Docker image reference')
          .optional()
          .describe('Sandbox image; the operator default when absent.'),
        setup: Script.optional().describe('Runs before the agent; may use network and secrets.'),
        verify: Script.optional().describe(
          'Runs after the agent; its result is part of the task result.',
        ),
        env: EnvMap.optional().describe('Variables visible in every phase.'),
        secrets: EnvMap.optional().describe(
          'Variables visible to setup only; never stored in the record or logged.',
        ),
        network: z
          .enum(['none', 'on'])
          .optional()
          .describe('Network during the agent phase, if the operator allows it.'),
      })
      .optional(),
    model: z
      .strictObject({
        name: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$/, 'must be a model name')
          .optional(),
        reasoningEffort: ReasoningEffort.optional(),
      })
      .optional(),
    limits: z
      .strictObject({
        timeoutSeconds: z
          .number()
          .int()
          .min(10)
          .max(24 * 3600)
          .optional(),
        maxTurns: z.number().int().min(1).max(1000).optional(),
        maxTokens: z.number().int().min(1000).max(100_000_000).optional(),
      })
      .optional(),
  })
  .describe(
    'A task: a repository, a ref and a prompt, with optional environment, model and limits.',
  );
export type TaskSpec = z.infer<typeof TaskSpec>;

/** A follow-up: the next prompt of a task's conversation. */
export const FollowUp = z
  .strictObject({
    prompt: z
      .string()
      .min(1)
      .refine(maxBytes(SPEC_LIMITS.promptBytes), `at most ${SPEC_LIMITS.promptBytes} bytes`)
      .refine((s) => s.trim().length > 0, 'must not be blank')
      .describe('What to do next, in plain words; the agent sees the conversation so far.'),
  })
  .describe('A follow-up turn on a task that has ended.');
export type FollowUp = z.infer<typeof FollowUp>;

const TaskError = z.object({
  code: z.enum(ERROR_CODES),
  message: z.string(),
  phase: TaskPhase.nullable().optional(),
});
export type TaskError = z.infer<typeof TaskError>;

export const FileChange = z.object({
  path: z.string(),
  oldPath: z.string().optional(),
  status: z.enum(['added', 'modified', 'deleted', 'renamed', 'copied', 'type_changed']),
  additions: z.number().int().nonnegative(),
  deletions: z.number().int().nonnegative(),
  binary: z.boolean().optional(),
});
export type FileChange = z.infer<typeof FileChange>;

export const VerifyResult = z.object({
  command: z.string(),
  exitCode: z.number().int().nullable(),
  passed: z.boolean(),
  output: z.string(),
  durationMs: z.number().nonnegative().optional(),
});
export type VerifyResult = z.infer<typeof VerifyResult>;

export const TaskResult = z.object({
  summary: z.string().nullable(),
  files: z.array(FileChange),
  additions: z.number().int().nonnegative(),
  deletions: z.number().int().nonnegative(),
  patchBytes: z.number().int().nonnegative(),
  verify: VerifyResult.nullable(),
  stopReason: z.string().nullable().optional(),
});
export type TaskResult = z.infer<typeof TaskResult>;

export const Usage = z.object({
  inputTokens: z.number().int().nonnegative(),
  cachedInputTokens: z.number().int().nonnegative(),
  outputTokens: z.number().int().nonnegative(),
  reasoningTokens: z.number().int().nonnegative(),
  modelCalls: z.number().int().nonnegative(),
  toolCalls: z.number().int().nonnegative(),
});
export type Usage = z.infer<typeof Usage>;
export const EMPTY_USAGE: Usage = {
  inputTokens: 0,
  cachedInputTokens: 0,
  outputTokens: 0,
  reasoningTokens: 0,
  modelCalls: 0,
  toolCalls: 0,
};

/** What one turn alone did: its own patch (against the tree the turn started from), not the task's. */
export const TurnResult = TaskResult;
export type TurnResult = z.infer<typeof TurnResult>;

/**
 * One exchange of a task's conversation: the prompt (the task's own for turn 1, a follow-up
 * after that) and what came of it.
 */
export const Turn = z.object({
  n: z.number().int().positive(),
  prompt: z.string(),
  status: TaskStatus,
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  /** The turn went on in the sandbox the previous turn left (no fetch, no setup). */
  warm: z.boolean().nullable(),
  usage: Usage,
  error: TaskError.nullable(),
  result: TurnResult.nullable(),
});
export type Turn = z.infer<typeof Turn>;

/**
 * A task record as stored and served. Secrets are not part of it: only their names are kept
 * (`environment.secretNames`), the values live apart until the task ends.
 */
export const Task = z.object({
  id: z.string(),
  tenant: z.string(),
  status: TaskStatus,
  phase: TaskPhase.nullable(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  repo: z.object({ url: z.string(), ref: z.string().nullable() }),
  prompt: z.string(),
  environment: z.object({
    image: z.string(),
    setup: z.string().nullable(),
    verify: z.string().nullable(),
    env: z.record(z.string(), z.string()),
    secretNames: z.array(z.string()),
    network: z.enum(['none', 'on']),
  }),
  model: z.object({ name: z.string(), reasoningEffort: ReasoningEffort.nullable() }),
  limits: z.object({
    timeoutSeconds: z.number().int(),
    maxTurns: z.number().int(),
    maxTokens: z.number().int(),
  }),
  baseCommit: z.string().nullable(),
  result: TaskResult.nullable(),
  usage: Usage,
  error: TaskError.nullable(),
  attempts: z.number().int().nonnegative(),
  cancelRequested: z.boolean(),
  /** The turn running now, or the last one; 1 until a follow-up. */
  turn: z.number().int().positive().default(1),
  /** Every turn so far, oldest first (`turns[turn - 1]` is the current one). */
  turns: z.array(Turn).default([]),
});
export type Task = z.infer<typeof Task>;

/** Names of a task's artifacts in the artifact store. */
export const ARTIFACTS = {
  /** The patch of a record from before turns (its turns' patches are below). */
  patch: 'patch.diff',
  events: 'events.jsonl',
  /** The cumulative patch as turn `n` left it; never rewritten by a later turn. */
  turnPatch: (n: number) => `turn-${n}.patch.diff`,
  /** What turn `n` alone changed, against the tree it started from. */
  turnChanges: (n: number) => `turn-${n}.changes.diff`,
  /** Turn `n`'s model transcript. */
  turnTranscript: (n: number) => `turn-${n}.transcript.json`,
  /** The conversation as the model last saw it after turn `n`: the next turn's context. */
  turnConversation: (n: number) => `turn-${n}.conversation.json`,
} as const;

/** Turn `n` as it is queued. */
export function newTurn(n: number, prompt: string, createdAt: string): Turn {
  return {
    n,
    prompt,
    status: 'queued',
    createdAt,
    startedAt: null,
    finishedAt: null,
    warm: null,
    usage: EMPTY_USAGE,
    error: null,
    result: null,
  };
}

/** The record's current turn (a record stored before turns existed gets one made from it). */
export function currentTurn(task: Task): Turn {
  return (
    task.turns[task.turn - 1] ?? {
      n: task.turn,
      prompt: task.prompt,
      status: task.status,
      createdAt: task.createdAt,
      startedAt: task.startedAt,
      finishedAt: task.finishedAt,
      warm: null,
      usage: task.usage,
      error: task.error,
      result: null,
    }
  );
}

/** The record with its current turn changed by `change`. */
export function withCurrentTurn(task: Task, change: (turn: Turn) => Turn): Task {
  const turns = [...task.turns];
  turns[task.turn - 1] = change(currentTurn(task));
  return { ...task, turns };
}

/**
 * The latest turn whose workspace result exists (its cumulative patch was collected): the tree a
 * follow-up continues from. Null when no turn got that far.
 */
export function lastResultTurn(task: Task): number | null {
  for (let i = task.turns.length - 1; i >= 0; i--) {
    const turn = task.turns[i];
    if (turn?.result != null) return turn.n;
  }
  // A record from before turns: its result is turn 1's.
  return task.turns.length === 0 && task.result !== null ? 1 : null;
}

/** Sums usages (a task's usage is its turns' together). */
export function addUsage(a: Usage, b: Usage): Usage {
  return {
    inputTokens: a.inputTokens + b.inputTokens,
    cachedInputTokens: a.cachedInputTokens + b.cachedInputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    reasoningTokens: a.reasoningTokens + b.reasoningTokens,
    modelCalls: a.modelCalls + b.modelCalls,
    toolCalls: a.toolCalls + b.toolCalls,
  };
}
