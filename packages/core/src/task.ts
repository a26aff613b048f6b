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

const ModelName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$/, 'must be a model name');

/** A pathspec naming files of the repository: no NUL, no option, no pathspec magic. */
const CacheKeyPattern = z
  .string()
  .min(1)
  .max(200)
  .regex(
    /^[A-Za-z0-9._*?/[\]@+-]+$/,
    'must be a path or glob of letters, digits and . _ * ? / [ ] @ + -',
  )
  .refine(
    (s) => !s.startsWith('-') && !s.startsWith('/') && !s.split('/').includes('..'),
    'must be a relative path inside the repository',
  );

/** Lockfiles and manifests that key a cached environment when a task names none. */
export const DEFAULT_CACHE_KEY: readonly string[] = [
  'package.json',
  'package-lock.json',
  'npm-shrinkwrap.json',
  'yarn.lock',
  'pnpm-lock.yaml',
  'requirements*.txt',
  'pyproject.toml',
  'poetry.lock',
  'Pipfile.lock',
  'setup.py',
  'setup.cfg',
  'go.sum',
  'Cargo.lock',
  'Gemfile.lock',
  'composer.lock',
];

/** Most attempts one turn may run (the operator may allow fewer). */
export const MAX_ATTEMPTS = 8;

/**
 * A branch name git accepts (`git check-ref-format --branch`) and no tool misreads: no `..`,
 * `@{`, control or special characters, no component starting with `.` or ending in `.lock`, not
 * starting with `-`.
 */
function isBranchName(name: string): boolean {
  if (name.length === 0 || name.length > 200) return false;
  if (!/^[A-Za-z0-9._/+-]+$/.test(name)) return false;
  if (name.startsWith('-') || name.startsWith('/') || name.endsWith('/') || name.endsWith('.'))
    return false;
  if (name.includes('..') || name.includes('//') || name === '@' || name === 'HEAD') return false;
  return name.split('/').every((part) => !part.startsWith('.') && !part.endsWith('.lock'));
}

const BranchName = z
  .string()
  .refine(
    isBranchName,
    'must be a branch name: letters, digits, . _ / + -, no "..", no leading "-"',
  );

/** Where and how a task's result is delivered: a branch pushed, optionally a pull request opened. */
export const DeliveryRequest = z
  .strictObject({
    branch: BranchName.optional().describe('Branch to push; `patchbay/<task id>` when absent.'),
    commitMessage: z
      .string()
      .min(1)
      .refine(maxBytes(8 * 1024), 'at most 8192 bytes')
      .refine((s) => !s.includes('\0'), 'must not contain NUL')
      .optional()
      .describe("The commit's message; the prompt and the task id when absent."),
    pullRequest: z
      .strictObject({
        title: z.string().min(1).max(256).optional(),
        body: z
          .string()
          .refine(maxBytes(32 * 1024), 'at most 32768 bytes')
          .optional(),
        draft: z.boolean().optional(),
      })
      .optional()
      .describe(
        'Open a pull (merge) request from the branch into the branch the task started from.',
      ),
    token: z
      .string()
      .min(1)
      .max(4096)
      .regex(/^[\x21-\x7e]+$/, 'must be visible ASCII')
      .optional()
      .describe(
        "A push and forge-API token for this delivery only, instead of the operator's; never stored in the record, logged or shown to the sandbox.",
      ),
  })
  .describe("Push the result to a branch of the task's repository (and open a pull request).");
export type DeliveryRequest = z.infer<typeof DeliveryRequest>;

/** Where lifecycle events of one task are POSTed, signed with the tenant's signing secret. */
const Notify = z
  .strictObject({
    url: z.string().min(1).max(SPEC_LIMITS.urlLength).describe('https:// URL to POST events to.'),
  })
  .describe("POST every lifecycle event of this task to a URL, signed with the tenant's secret.");

/** A name the egress proxy may let a task reach: `host.example.org`, or `*.example.org`. */
const DomainPattern = z
  .string()
  .max(253)
  .regex(
    /^(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/,
    'must be a lower-case host name, or *. and one',
  );

/** The agent that works in the sandbox. */
export const AgentRuntime = z.enum(['patchbay', 'codex']);
export type AgentRuntime = z.infer<typeof AgentRuntime>;

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
          .enum(['none', 'on', 'allowlist'])
          .optional()
          .describe(
            "Network during the agent phase: none (the default), on (if the operator allows it), or allowlist: only the domains of `allowDomains`, through Patchbay's proxy.",
          ),
        allowDomains: z
          .array(DomainPattern)
          .max(64)
          .optional()
          .describe(
            "With network allowlist: the names the agent may reach (`registry.npmjs.org`, `*.pypi.org`), each within the operator's own list.",
          ),
        cacheKey: z
          .array(CacheKeyPattern)
          .max(32)
          .optional()
          .describe(
            'Files whose content keys the cached environment (pathspecs, e.g. package-lock.json, requirements*.txt); a sensible list of lockfiles when absent. A change in any of them, the setup script, the env or the image misses the cache.',
          ),
        setupAlways: z
          .boolean()
          .optional()
          .describe('Run setup even when a cached environment matches (default false).'),
        maintenance: Script.optional().describe(
          'Runs instead of setup when the environment comes from the cache (e.g. `npm install` to catch up).',
        ),
      })
      .optional(),
    model: z
      .strictObject({
        name: ModelName.optional(),
        reasoningEffort: ReasoningEffort.optional(),
      })
      .optional(),
    attempts: z
      .number()
      .int()
      .min(1)
      .max(MAX_ATTEMPTS)
      .optional()
      .describe(
        'Attempts run side by side, each in its own sandbox; the result is the one the rule picks (verify passed, then fewest files, smallest patch, fewest tokens). Default 1.',
      ),
    models: z
      .array(ModelName)
      .min(1)
      .max(MAX_ATTEMPTS)
      .optional()
      .describe(
        'One model per attempt, round-robin when there are more attempts than models; `attempts` defaults to their number.',
      ),
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
    agent: z
      .strictObject({
        runtime: AgentRuntime.optional().describe(
          "`patchbay` (the default): Patchbay's own agent loop, its model calls made by the worker. `codex`: the Codex CLI runs inside the sandbox and reaches the model only through the worker's gateway, with a token valid while the task runs.",
        ),
      })
      .optional()
      .describe('Which agent works on the task.'),
    delivery: DeliveryRequest.optional().describe(
      'Push the result to a branch (and open a pull request) when the task succeeds.',
    ),
    notify: Notify.optional(),
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

/** How one attempt ranked when a turn's attempts were compared. */
const RankedAttempt = z.object({
  attempt: z.number().int().positive(),
  model: z.string(),
  status: z.string(),
  verifyPassed: z.boolean().nullable(),
  files: z.number().int().nonnegative().nullable(),
  patchBytes: z.number().int().nonnegative().nullable(),
  tokens: z.number().int().nonnegative(),
});

/** Which attempt a turn's result is, and why: the rule, every attempt's standing, the reason. */
export const Selection = z.object({
  rule: z.string(),
  chosen: z.number().int().positive(),
  reason: z.string(),
  /** Best first; attempts without a patch last. */
  ranking: z.array(RankedAttempt),
  /** Set when a user chose another attempt than the rule did. */
  overruled: z
    .object({ at: z.string(), ruleChose: z.number().int().positive() })
    .nullable()
    .optional(),
});
export type Selection = z.infer<typeof Selection>;

export const TaskResult = z.object({
  summary: z.string().nullable(),
  files: z.array(FileChange),
  additions: z.number().int().nonnegative(),
  deletions: z.number().int().nonnegative(),
  patchBytes: z.number().int().nonnegative(),
  verify: VerifyResult.nullable(),
  stopReason: z.string().nullable().optional(),
  /** For a turn of several attempts: which one this result is, and why. */
  selection: Selection.nullable().optional(),
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

/** Where a run's time went, from the queue to the end of verify (milliseconds). */
export const Timings = z.object({
  /** From the turn being queued to a worker starting it. */
  queuedMs: z.number().nonnegative(),
  fetchMs: z.number().nonnegative().nullable(),
  provisionMs: z.number().nonnegative().nullable(),
  setupMs: z.number().nonnegative().nullable(),
  /**
   * The environment came from the cache (a setup snapshot was restored): setup did not run, or,
   * with `setupAlways`, ran again over the snapshot. Null when the task has no setup.
   */
  setupCached: z.boolean().nullable(),
  /**
   * The sandbox came from the warm pool with the base commit already checked out, so provision
   * copied no repository into it. Null when the turn did not provision a fresh sandbox.
   */
  workspacePreloaded: z.boolean().nullable().default(null),
  agentMs: z.number().nonnegative().nullable(),
  verifyMs: z.number().nonnegative().nullable(),
  /** When the agent could make its first tool call (the sandbox ready, setup done). */
  readyAt: z.string().nullable(),
});
export type Timings = z.infer<typeof Timings>;

/** What one turn alone did: its own patch (against the tree the turn started from), not the task's. */
export type TurnResult = TaskResult;

/** One attempt of a turn: a full run in a sandbox of its own, with its own log and usage. */
export const Attempt = z.object({
  n: z.number().int().positive(),
  model: z.string(),
  status: TaskStatus,
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  /** Tries of this attempt's run (above 1 after a retry or a worker that died). */
  tries: z.number().int().nonnegative(),
  /** The worker that ran (or runs) its last try. */
  worker: z.string().nullable().default(null),
  usage: Usage,
  error: TaskError.nullable(),
  /** The task's cumulative result had this attempt been chosen. */
  result: TaskResult.nullable(),
  /** What this attempt changed in its turn. */
  changes: TaskResult.nullable(),
  /** Where this attempt's time went. */
  timings: Timings.nullable().default(null),
});
export type Attempt = z.infer<typeof Attempt>;

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
  result: TaskResult.nullable(),
  /** The turn's attempts (one unless the task asked for several). */
  attempts: z.array(Attempt).default([]),
  /** The attempt the turn's result is: picked by the rule, or by a user who overruled it. */
  chosen: z.number().int().positive().nullable().default(null),
  /** Where the turn's time went (its first attempt's, when it ran several). */
  timings: Timings.nullable().default(null),
});
export type Turn = z.infer<typeof Turn>;

/** What became of a delivery: the branch pushed, the commit, the pull request. */
export const Delivery = z.object({
  /** `requested`: waits for the task to succeed; `pending`: queued or being pushed. */
  status: z.enum(['requested', 'pending', 'delivered', 'failed']),
  branch: z.string(),
  /** Asked for in the spec: every turn that succeeds is delivered (to the same branch). */
  auto: z.boolean(),
  /** How it was asked for (the token, if any, is kept apart). */
  request: z.object({
    commitMessage: z.string().nullable(),
    pullRequest: z
      .object({ title: z.string().nullable(), body: z.string().nullable(), draft: z.boolean() })
      .nullable(),
  }),
  /** The turn whose result was (or is being) delivered. */
  turn: z.number().int().positive().nullable(),
  commit: z.string().nullable(),
  pushedAt: z.string().nullable(),
  pullRequest: z.object({ url: z.string(), number: z.number().int() }).nullable(),
  error: TaskError.nullable(),
});
export type Delivery = z.infer<typeof Delivery>;

/**
 * A task record as stored and served. Secrets are not part of it: only their names are kept
 * (`environment.secretNames`), the values live apart until the task ends.
 */
/**
 * How a task reached Patchbay: the REST API, the page, the `patchbay` command, an MCP client, a
 * schedule, or a mention on a forge. Clients say which they are with the `Patchbay-Client`
 * header; anything else is the API.
 */
const TASK_ORIGINS = ['api', 'page', 'cli', 'mcp', 'schedule', 'mention'] as const;
/** The origins a client may name itself by (`schedule` and `mention` are set by Patchbay). */
export const CLIENT_ORIGINS = ['page', 'cli', 'mcp'] as const;

/** The forge thread a mention came from: where Patchbay answers. */
const MentionOrigin = z.object({
  forge: z.enum(['github', 'gitlab', 'gitea']),
  /** The repository's path on the forge, e.g. `owner/name`. */
  repo: z.string(),
  /** The or pull request's number. */
  number: z.number().int().positive(),
  pullRequest: z.boolean(),
  /** The comment (or the assigned issue) on the forge's web page. */
  url: z.string(),
  /** Who asked. */
  author: z.string(),
});

export const TaskOrigin = z
  .object({
    kind: z.enum(TASK_ORIGINS),
    /** For `schedule`: the schedule that started it. */
    scheduleId: z.string().optional(),
    /** For `mention`: the comment that started it. */
    mention: MentionOrigin.optional(),
  })
  .describe(
    'Where the task came from: the API, the page, the CLI, an MCP client, a schedule or a mention on a forge.',
  );
export type TaskOrigin = z.infer<typeof TaskOrigin>;

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
    network: z.enum(['none', 'on', 'allowlist']),
    /** With `network: allowlist`: what the agent phase may reach through the proxy. */
    allowDomains: z.array(z.string()).default([]),
    cacheKey: z.array(z.string()).default([...DEFAULT_CACHE_KEY]),
    setupAlways: z.boolean().default(false),
    maintenance: z.string().nullable().default(null),
  }),
  model: z.object({ name: z.string(), reasoningEffort: ReasoningEffort.nullable() }),
  /** Which agent runs the task's turns. */
  agent: z.object({ runtime: AgentRuntime }).default({ runtime: 'patchbay' }),
  limits: z.object({
    timeoutSeconds: z.number().int(),
    maxTurns: z.number().int(),
    maxTokens: z.number().int(),
  }),
  baseCommit: z.string().nullable(),
  result: TaskResult.nullable(),
  usage: Usage,
  error: TaskError.nullable(),
  /** Tries of the current run (above 1 after a retry or a worker that died). */
  tries: z.number().int().nonnegative(),
  /** Attempts each turn runs side by side. */
  attempts: z.number().int().positive().default(1),
  /** Models the attempts use, round-robin; empty: every attempt uses `model.name`. */
  models: z.array(z.string()).default([]),
  cancelRequested: z.boolean(),
  /** The turn running now, or the last one; 1 until a follow-up. */
  turn: z.number().int().positive().default(1),
  /** Every turn so far, oldest first (`turns[turn - 1]` is the current one). */
  turns: z.array(Turn).default([]),
  /** The branch (and pull request) the result went to; null until one is asked for. */
  delivery: Delivery.nullable().default(null),
  /** Where this task's lifecycle events are POSTed; null for none. */
  notify: z.object({ url: z.string() }).nullable().default(null),
  /** Where the current turn's time went (`startedAt` is when a worker took it). */
  timings: Timings.nullable().default(null),
  /** Where the task came from (records from before it was kept: the API). */
  origin: TaskOrigin.default({ kind: 'api' }),
});
export type Task = z.infer<typeof Task>;

/** The part an attempt adds to an artifact name: none for the first, so one-attempt names stay. */
const attemptPart = (a: number): string => (a > 1 ? `.attempt-${a}` : '');

/** Names of a task's artifacts in the artifact store. */
export const ARTIFACTS = {
  /** The patch of a record from before turns (its turns' patches are below). */
  patch: 'patch.diff',
  events: 'events.jsonl',
  /** The cumulative patch as attempt `a` of turn `n` left it; never rewritten by a later turn. */
  turnPatch: (n: number, a = 1) => `turn-${n}${attemptPart(a)}.patch.diff`,
  /** What attempt `a` of turn `n` changed, against the tree the turn started from. */
  turnChanges: (n: number, a = 1) => `turn-${n}${attemptPart(a)}.changes.diff`,
  /** The model transcript of attempt `a` of turn `n`. */
  turnTranscript: (n: number, a = 1) => `turn-${n}${attemptPart(a)}.transcript.json`,
  /** The conversation as the model last saw it after attempt `a` of turn `n`: a next turn's context. */
  turnConversation: (n: number, a = 1) => `turn-${n}${attemptPart(a)}.conversation.json`,
} as const;

/** Turn `n` as it is queued. */
export function newTurn(task: AttemptPlan, n: number, prompt: string, createdAt: string): Turn {
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
    attempts: Array.from({ length: task.attempts }, (_, i) => newAttempt(task, i + 1)),
    chosen: null,
    timings: null,
  };
}

/** What decides a turn's attempts: how many, and which model each uses. */
type AttemptPlan = Pick<Task, 'attempts' | 'models' | 'model'>;

/** The model attempt `n` uses: the task's models round-robin, or its one model. */
export function modelOfAttempt(task: AttemptPlan, n: number): string {
  return task.models.length === 0
    ? task.model.name
    : (task.models[(n - 1) % task.models.length] ?? task.model.name);
}

function newAttempt(task: AttemptPlan, n: number): Attempt {
  return {
    n,
    model: modelOfAttempt(task, n),
    status: 'queued',
    startedAt: null,
    finishedAt: null,
    tries: 0,
    worker: null,
    usage: EMPTY_USAGE,
    error: null,
    result: null,
    changes: null,
    timings: null,
  };
}

/** The record's current turn (a record stored before turns existed gets one made from it). */
export function currentTurn(task: Task): Turn {
  return (
    task.turns[task.turn - 1] ?? {
      ...newTurn(task, task.turn, task.prompt, task.createdAt),
      status: task.status,
      startedAt: task.startedAt,
      finishedAt: task.finishedAt,
      usage: task.usage,
      error: task.error,
    }
  );
}

/** The record with attempt `n` of its current turn changed by `change`. */
export function withAttempt(task: Task, n: number, change: (attempt: Attempt) => Attempt): Task {
  return withCurrentTurn(task, (turn) => ({
    ...turn,
    attempts: turn.attempts.map((attempt) => (attempt.n === n ? change(attempt) : attempt)),
  }));
}

/**
 * The event log an attempt writes to: the task's own when the task runs one attempt per turn,
 * else one of the attempt's own (`<id>.t<turn>.a<n>`), the task's log then carrying the turn's
 * status and an `attempt` event per attempt that ends.
 */
export function attemptLogId(task: Pick<Task, 'id' | 'attempts'>, turn: number, n: number): string {
  return task.attempts > 1 ? `${task.id}.t${turn}.a${n}` : task.id;
}

/**
 * The record with its usage added up again: the current turn's from its attempts, the task's from
 * its turns (both are kept on the record so that readers need not sum).
 */
export function withUsageTotals(task: Task): Task {
  const next = withCurrentTurn(task, (turn) =>
    turn.attempts.length === 0
      ? turn
      : { ...turn, usage: totalUsage(turn.attempts.map((a) => a.usage)) },
  );
  return { ...next, usage: totalUsage(next.turns.map((turn) => turn.usage)) };
}

/** The sum of usages. */
function totalUsage(usages: readonly Usage[]): Usage {
  return usages.reduce(addUsage, EMPTY_USAGE);
}

/** The attempt a turn's result is (the first when the turn has not chosen yet). */
export function chosenAttempt(turn: Turn): number {
  return turn.chosen ?? 1;
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
function addUsage(a: Usage, b: Usage): Usage {
  return {
    inputTokens: a.inputTokens + b.inputTokens,
    cachedInputTokens: a.cachedInputTokens + b.cachedInputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    reasoningTokens: a.reasoningTokens + b.reasoningTokens,
    modelCalls: a.modelCalls + b.modelCalls,
    toolCalls: a.toolCalls + b.toolCalls,
  };
}

/** A task as clients see it (API, webhooks): the stored record without internal bookkeeping. */
export const TaskView = Task.omit({ tenant: true, cancelRequested: true });
export type TaskView = z.infer<typeof TaskView>;

/** Views of frozen records (as the store reads them), so that one record has one view object. */
const views = new WeakMap<Task, TaskView>();

export function toView(task: Task): TaskView {
  const known = views.get(task);
  if (known !== undefined) return known;
  const { tenant: _tenant, cancelRequested: _cancelRequested, ...view } = task;
  if (Object.isFrozen(task)) views.set(task, Object.freeze(view));
  return view;
}

/**
 * The artifact holding the task's cumulative patch as of turn `n` (by default its last turn with
 * a result), from that turn's chosen attempt; null when there is no such patch.
 */
export function patchArtifactOf(
  task: Task,
  n: number | null = lastResultTurn(task),
): string | null {
  if (n === null) return null;
  // A record from before turns kept its patch under the task-wide name.
  if (task.turns.length === 0) return n === 1 && task.result !== null ? ARTIFACTS.patch : null;
  const turn = task.turns[n - 1];
  return turn?.result == null ? null : ARTIFACTS.turnPatch(n, chosenAttempt(turn));
}
