import { readFileSync } from 'node:fs';
import { hostname, homedir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { HostSyntaxError, parseHostRule } from './hosts.js';
import { AgentRuntime, MAX_ATTEMPTS } from './task.js';

/**
 * The environment Patchbay reads, one variable per field. Each `describe` text is the variable's
 * documentation; defaults are stated in `.default()` and listed in the README.
 */
const number = z.coerce.number({ error: 'expected a number' });
const wholeNumber = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  number
    .int({ error: 'expected a whole number' })
    .min(min, { error: `expected at least ${min}` })
    .max(max, { error: `expected at most ${max}` });
const port = wholeNumber(1, 65535);
const positiveInt = wholeNumber(1);
const nonNegativeInt = wholeNumber(0);
const url = z.url();
const flag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'expected true or false' })
  .transform((s) => s === 'true' || s === '1' || s === 'yes');
const list = z.string().transform((s) =>
  s
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0),
);

/** Repository hosts, each entry parsed as the URL policy will read it, so a bad one stops start. */
const repoHosts = list.superRefine((entries, ctx) => {
  for (const entry of entries) {
    try {
      parseHostRule(entry);
    } catch (err) {
      if (!(err instanceof HostSyntaxError)) throw err;
      ctx.addIssue({ code: 'custom', message: err.message });
    }
  }
});

/** `tenant:key` pairs; a key written `sha256:<hex>` is stored hashed already. */
const apiKeys = z.string().transform((s, ctx) => {
  const keys: ApiKey[] = [];
  for (const entry of s
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e.length > 0)) {
    const colon = entry.indexOf(':');
    const tenant = entry.slice(0, colon);
    const key = entry.slice(colon + 1);
    if (colon <= 0 || !/^[A-Za-z0-9_.-]{1,64}$/.test(tenant) || key.length === 0) {
      // Never echo the entry: it holds a key.
      ctx.addIssue({ code: 'custom', message: `entry ${keys.length + 1} is not tenant:key` });
      return z.NEVER;
    }
    const hashed = /^sha256:([0-9a-f]{64})$/i.exec(key);
    if (!hashed && key.length < 16) {
      ctx.addIssue({
        code: 'custom',
        message: `the key of tenant ${tenant} is shorter than 16 characters`,
      });
      return z.NEVER;
    }
    keys.push({
      tenant,
      sha256: hashed ? hashed[1]!.toLowerCase() : createHash('sha256').update(key).digest('hex'),
    });
  }
  return keys;
});

/** `host=token` or `host=user:token` pairs: push (and forge API) credentials per host. */
const gitCredentials = z.string().transform((s, ctx) => parseCredentials(s, ctx, 'entry'));

function parseCredentials(
  text: string,
  ctx: z.RefinementCtx,
  what: string,
): Record<string, GitCredential> {
  const credentials: Record<string, GitCredential> = {};
  const entries = text
    .split(/[,\n]/)
    .map((e) => e.trim())
    .filter((e) => e.length > 0 && !e.startsWith('#'));
  for (const [i, entry] of entries.entries()) {
    const eq = entry.indexOf('=');
    const host = entry.slice(0, eq).trim().toLowerCase();
    const value = entry.slice(eq + 1).trim();
    const colon = value.indexOf(':');
    if (eq <= 0 || value === '' || !/^[a-z0-9.-]+(:\d+)?$/.test(host)) {
      // Never echo the entry: it holds a token.
      ctx.addIssue({ code: 'custom', message: `${what} ${i + 1} is not host=token` });
      return {};
    }
    credentials[host] =
      colon > 0
        ? { username: value.slice(0, colon), token: value.slice(colon + 1) }
        : { username: null, token: value };
  }
  return credentials;
}

/** A push credential: a token, and the user name it goes with (the forge's convention when null). */
export interface GitCredential {
  username: string | null;
  token: string;
}

const FORGE_KINDS = ['github', 'gitlab', 'gitea', 'bitbucket'] as const;
export type ForgeKind = (typeof FORGE_KINDS)[number];

/** Where a host's pull requests are opened: which API, at which base URL. */
export interface ForgeConfig {
  kind: ForgeKind;
  apiUrl: string;
}

const DEFAULT_FORGES: Record<string, ForgeConfig> = {
  'github.com': { kind: 'github', apiUrl: 'https://api.github.com' },
  'gitlab.com': { kind: 'gitlab', apiUrl: 'https://gitlab.com/api/v4' },
  'bitbucket.org': { kind: 'bitbucket', apiUrl: 'https://api.bitbucket.org/2.0' },
  'codeberg.org': { kind: 'gitea', apiUrl: 'https://codeberg.org/api/v1' },
};

/** A GitHub App: its id and private key (PEM), read from its file at start. */
export interface GitHubApp {
  appId: number;
  privateKey: string;
}

/** `host=appId:/path/to/key.pem` entries; each key file is read when the config is loaded. */
const githubApps = list.transform((entries, ctx) => {
  const apps: Record<string, GitHubApp> = {};
  for (const entry of entries) {
    const match = /^([A-Za-z0-9.-]+(?::\d+)?)=(\d+):(\S+)$/.exec(entry);
    if (!match) {
      ctx.addIssue({ code: 'custom', message: `"${entry}" is not host=appId:/path/to/key.pem` });
      return z.NEVER;
    }
    let privateKey: string;
    try {
      privateKey = readFileSync(match[3]!, 'utf8');
    } catch (err) {
      ctx.addIssue({
        code: 'custom',
        message: `cannot read the private key ${match[3]} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      });
      return z.NEVER;
    }
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(privateKey)) {
      ctx.addIssue({ code: 'custom', message: `${match[3]} holds no PEM private key` });
      return z.NEVER;
    }
    apps[match[1]!.toLowerCase()] = { appId: Number(match[2]), privateKey };
  }
  return apps;
});

/** `host=kind[:apiUrl]` entries, e.g. `git.corp=gitlab:https://git.corp/api/v4`. */
const forges = list.transform((entries, ctx) => {
  const parsed: Record<string, ForgeConfig> = { ...DEFAULT_FORGES };
  for (const entry of entries) {
    const match = /^([A-Za-z0-9.-]+(?::\d+)?)=([a-z]+)(?::(https?:\/\/\S+))?$/.exec(entry);
    const kind = match?.[2] as ForgeKind | undefined;
    if (!match || kind === undefined || !FORGE_KINDS.includes(kind)) {
      ctx.addIssue({
        code: 'custom',
        message: `"${entry}" is not host=kind[:apiUrl] with kind one of ${FORGE_KINDS.join(', ')}`,
      });
      return z.NEVER;
    }
    const host = match[1]!.toLowerCase();
    const apiUrl = match[3] ?? defaultApiUrl(kind, host);
    parsed[host] = { kind, apiUrl: apiUrl.replace(/\/+$/, '') };
  }
  return parsed;
});

function defaultApiUrl(kind: ForgeKind, host: string): string {
  switch (kind) {
    case 'github':
      return `https://${host}/api/v3`;
    case 'gitlab':
      return `https://${host}/api/v4`;
    case 'gitea':
      return `https://${host}/api/v1`;
    case 'bitbucket':
      return 'https://api.bitbucket.org/2.0';
  }
}

/** A webhook the operator configures for a tenant. */
export const ConfiguredWebhook = z.strictObject({
  tenant: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/),
  url: z.string().min(1).max(2048),
  secret: z.string().min(16),
  events: z.array(z.string()).optional(),
});
export type ConfiguredWebhook = z.infer<typeof ConfiguredWebhook>;

const webhooks = z.string().transform((s, ctx) => {
  let raw: unknown;
  try {
    raw = JSON.parse(s);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'expected a JSON array of {tenant, url, secret}' });
    return z.NEVER;
  }
  const parsed = z.array(ConfiguredWebhook).safeParse(raw);
  if (!parsed.success) {
    // Never echo the value: it holds secrets.
    const path = parsed.error.issues[0]?.path.join('.') ?? '';
    ctx.addIssue({ code: 'custom', message: `entry ${path} is not {tenant, url, secret (16+)}` });
    return z.NEVER;
  }
  return parsed.data;
});

/** The comment authors' standing GitHub reports (`author_association`). */
const ASSOCIATIONS = [
  'OWNER',
  'MEMBER',
  'COLLABORATOR',
  'CONTRIBUTOR',
  'FIRST_TIME_CONTRIBUTOR',
  'FIRST_TIMER',
  'MANNEQUIN',
  'NONE',
] as const;

/**
 * A forge whose webhooks start tasks for a tenant: comments that mention Patchbay, and issues
 * assigned to its account. Who may is the policy: the repositories listed (`owner/name`, or
 * `owner/*`), and on GitHub the commenter's association; `users` names who may on any forge
 * (GitLab and Gitea report no association, so there only they may).
 */
export const Integration = z.strictObject({
  tenant: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/),
  forge: z.enum(['github', 'gitlab', 'gitea']),
  /** GitHub and Gitea sign deliveries with it; GitLab sends it as `X-Gitlab-Token`. */
  secret: z.string().min(16),
  repos: z.array(z.string().regex(/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*(\/\*)?$/)).min(1),
  mention: z
    .string()
    .regex(/^@[A-Za-z0-9_.-]{1,64}$/)
    .default('@patchbay'),
  /** Patchbay's own account there: its comments are never taken, and an issue assigned to it starts a task. */
  login: z.string().min(1).max(64).optional(),
  associations: z.array(z.enum(ASSOCIATIONS)).default(['OWNER', 'MEMBER', 'COLLABORATOR']),
  users: z.array(z.string().min(1).max(64)).default([]),
  /** What the tasks it starts run: setup and verify commands, and a draft pull request or not. */
  task: z
    .strictObject({
      setup: z.string().min(1).max(16_384).optional(),
      verify: z.string().min(1).max(16_384).optional(),
      draft: z.boolean().optional(),
    })
    .default({}),
});
export type Integration = z.infer<typeof Integration>;

const integrations = z.string().transform((s, ctx) => {
  let raw: unknown;
  try {
    raw = JSON.parse(s);
  } catch {
    ctx.addIssue({
      code: 'custom',
      message: 'expected a JSON array of {tenant, forge, secret, repos}',
    });
    return z.NEVER;
  }
  const parsed = z.array(Integration).safeParse(raw);
  if (!parsed.success) {
    // Never echo the value: it holds secrets.
    const issue = parsed.error.issues[0];
    ctx.addIssue({
      code: 'custom',
      message: `entry ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`,
    });
    return z.NEVER;
  }
  return parsed.data;
});

/** An API key as kept in memory: only its SHA-256. */
export interface ApiKey {
  tenant: string;
  sha256: string;
}

/** A size such as `512m`, `2g` or `1048576` (bytes), parsed into bytes. */
const byteSize = z.string().transform((s, ctx) => {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(s.trim());
  if (!match) {
    ctx.addIssue({ code: 'custom', message: `expected a size such as 512m or 2g, got "${s}"` });
    return z.NEVER;
  }
  const units = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 } as const;
  const unit = (match[2] ?? '').toLowerCase() as keyof typeof units;
  return Math.floor(Number(match[1]) * units[unit]);
});

export const EnvSchema = z.object({
  HOST: z.string().min(1).default('127.0.0.1').describe('Address the API listens on.'),
  PORT: port.default(8080).describe('Port the API listens on.'),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info')
    .describe('pino log level.'),
  REDIS_URL: url
    .default('redis://127.0.0.1:6379')
    .describe('Redis holding task records, events and the queue.'),
  PATCHBAY_REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/)
    .default('patchbay')
    .describe('Prefix of every Redis key and of the BullMQ queue.'),
  PATCHBAY_DATA_DIR: z
    .string()
    .min(1)
    .default(join(homedir(), '.patchbay', 'data'))
    .describe('Directory of the artifact store and the repository mirror cache.'),
  PATCHBAY_WEB_DIR: z
    .string()
    .min(1)
    .optional()
    .describe(
      "The built web page the API serves at `/` (default: the repository's apps/web/dist); no page when it holds no index.html.",
    ),
  PATCHBAY_API_KEYS: apiKeys
    .optional()
    .describe(
      'Comma-separated tenant:key pairs (a key may be given as sha256:<hex>). Unset: one local tenant, no key, loopback only (secret).',
    ),
  PATCHBAY_RATE_LIMIT_PER_MINUTE: positiveInt
    .default(600)
    .describe('Requests per minute per tenant.'),
  PATCHBAY_MAX_ACTIVE_TASKS: positiveInt
    .default(20)
    .describe(
      'Queued plus running attempts (each a sandbox; a task runs one unless it asks for more) a tenant may have at once.',
    ),
  PATCHBAY_BODY_LIMIT: byteSize.prefault('1m').describe('Largest request body.'),
  PATCHBAY_REPO_HOSTS: repoHosts
    .prefault('github.com,gitlab.com,bitbucket.org')
    .describe(
      'Hosts tasks may fetch from over https; an entry written http://host[:port] also allows plain http to it.',
    ),
  PATCHBAY_ALLOW_SSH: flag
    .prefault('false')
    .describe('Allow ssh:// repository URLs to the listed hosts.'),
  PATCHBAY_ALLOW_AGENT_NETWORK: flag
    .prefault('false')
    .describe('Let tasks that ask for network: "on" keep network in the agent phase.'),
  PATCHBAY_RUNTIMES: list
    .prefault('patchbay,codex')
    .pipe(
      z
        .array(AgentRuntime)
        .min(1, { error: 'expected at least one runtime' })
        .transform((names) => [...new Set(names)]),
    )
    .describe(
      'Agent runtimes this server offers (comma-separated: patchbay, codex); a task asking for another is refused, and the page offers only these.',
    ),
  PATCHBAY_EGRESS_DOMAINS: list
    .prefault('')
    .describe(
      'Names tasks may reach with network "allowlist" (comma-separated, `*.example.org` for every name under it); empty: no allowlist network.',
    ),
  PATCHBAY_EGRESS_PINNED: list
    .prefault('')
    .pipe(z.array(z.string().regex(/^[a-z0-9.-]+=[0-9a-f.:]+$/, 'expected name=address')))
    .describe(
      'Names the egress proxy resolves to a fixed address (name=address, comma-separated), private ones allowed: an internal mirror.',
    ),
  PATCHBAY_TASK_TIMEOUT_SECONDS: wholeNumber(10, 24 * 3600)
    .default(1800)
    .describe('Wall-clock limit of a task when it names none (and the most it may name).'),
  PATCHBAY_TASK_MAX_TURNS: wholeNumber(1, 1000)
    .default(80)
    .describe('Model turns of a task when it names none.'),
  PATCHBAY_MAX_ATTEMPTS: wholeNumber(1, MAX_ATTEMPTS)
    .default(4)
    .describe('Most attempts one task may run side by side (`attempts` in a task spec).'),
  PATCHBAY_TASK_MAX_TOKENS: wholeNumber(1000, 100_000_000)
    .default(2_000_000)
    .describe('Model tokens of a task when it names none.'),
  PATCHBAY_MAX_PATCH_BYTES: byteSize
    .prefault('64m')
    .describe(
      'Largest patch a task may produce; a larger one fails the task with patch_too_large.',
    ),
  PATCHBAY_MAX_REPO_BYTES: byteSize
    .prefault('2g')
    .describe(
      'Largest repository mirror kept on a worker; a larger one fails the task with repo_too_large.',
    ),
  PATCHBAY_REF_REFRESH_SECONDS: wholeNumber(0, 3600)
    .default(0)
    .describe(
      'Seconds a branch or tag (or the default branch) this worker fetched is reused from its mirror without a fetch, missing pushes made since; 0 fetches for every task.',
    ),
  OPENAI_API_KEY: z.string().min(1).optional().describe('Key for the model API (secret).'),
  OPENAI_BASE_URL: url
    .optional()
    .describe('Base URL of an OpenAI-compatible API; the official one when unset.'),
  PATCHBAY_MODEL: z
    .string()
    .min(1)
    .default('gpt-5-codex')
    .describe('Model used when a task names none.'),
  PATCHBAY_MODEL_WIRE: z
    .enum(['responses', 'chat'])
    .default('responses')
    .describe(
      'Model wire protocol: the Responses API, or Chat Completions for servers without it.',
    ),
  DOCKER_HOST: z
    .string()
    .regex(/^(unix|tcp|http|https|ssh):\/\//, {
      error: 'expected unix://, tcp://, http(s):// or ssh://',
    })
    .optional()
    .describe(
      'Docker engine address (unix://, tcp://host:2376, ssh://user@host), as the docker CLI reads it; the local socket /var/run/docker.sock when unset.',
    ),
  DOCKER_TLS_VERIFY: z
    .string()
    .optional()
    .transform((v) => v !== undefined && v !== '' && v !== '0')
    .describe(
      'Any value but empty or 0: speak TLS to DOCKER_HOST, check the engine against DOCKER_CERT_PATH/ca.pem and show cert.pem/key.pem (as the docker CLI does).',
    ),
  DOCKER_CERT_PATH: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Directory of ca.pem, cert.pem and key.pem for DOCKER_TLS_VERIFY; ~/.docker when unset.',
    ),
  PATCHBAY_SANDBOX_PROVIDER: z
    .enum(['docker'])
    .default('docker')
    .describe('Where sandboxes run: `docker`, the Docker engine at DOCKER_HOST.'),
  PATCHBAY_SANDBOX_RUNTIME: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/)
    .default('runc')
    .describe(
      'OCI runtime of every sandbox: runc, or runsc for gVisor (registered with the engine; provisioning does it when this asks for it).',
    ),
  PATCHBAY_SANDBOX_IMAGE: z
    .string()
    .min(1)
    .default('patchbay/sandbox:latest')
    .describe('Image a task runs in when it names none.'),
  PATCHBAY_SANDBOX_MEMORY: byteSize
    .prefault('2g')
    .describe('Memory limit of a sandbox (swap included).'),
  PATCHBAY_SANDBOX_CPUS: number
    .positive({ error: 'expected a positive number' })
    .max(256)
    .default(1)
    .describe('CPUs a sandbox may use.'),
  PATCHBAY_SANDBOX_PIDS: positiveInt
    .default(512)
    .describe('Most processes a sandbox may run at once.'),
  PATCHBAY_SANDBOX_NOFILE: positiveInt.default(4096).describe('Open-file limit inside a sandbox.'),
  PATCHBAY_SANDBOX_FSIZE: byteSize
    .prefault('1g')
    .describe('Largest file a sandbox process may write.'),
  PATCHBAY_SANDBOX_WORKSPACE_SIZE: byteSize
    .prefault('4g')
    .describe('Size cap of the /workspace tmpfs (counts against sandbox memory).'),
  PATCHBAY_SANDBOX_TMP_SIZE: byteSize.prefault('512m').describe('Size cap of the /tmp tmpfs.'),
  PATCHBAY_SANDBOX_HOME_SIZE: byteSize
    .prefault('512m')
    .describe(
      "Size cap of the agent user's home tmpfs (package managers' caches go there; counts against sandbox memory).",
    ),
  PATCHBAY_WARM_POOL_SIZE: wholeNumber(0, 64)
    .default(1)
    .describe('Containers kept ready per image.'),
  PATCHBAY_WARM_POOL_PRELOADS: wholeNumber(0, 64)
    .default(2)
    .describe(
      'Repositories (each per tenant, the most recently used) for which a pooled container waits with the last commit a task used already checked out; 0: none.',
    ),
  PATCHBAY_REAPER_INTERVAL_SECONDS: positiveInt
    .default(60)
    .describe('How often leftover sandboxes are looked for.'),
  PATCHBAY_SANDBOX_MAX_AGE_SECONDS: positiveInt
    .default(6 * 3600)
    .describe('Age past which any sandbox is removed, running task or not.'),
  PATCHBAY_WORKER_ID: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/)
    .default(`${hostname()}-${process.pid}`)
    .describe('Name of this worker in labels and heartbeats.'),
  PATCHBAY_WORKER_CONCURRENCY: wholeNumber(1, 64)
    .default(2)
    .describe('Tasks one worker runs at once.'),
  PATCHBAY_FOLLOWUP_KEEPALIVE_SECONDS: wholeNumber(0, 24 * 3600)
    .default(600)
    .describe(
      "How long a task's sandbox is kept after a turn ends, so a follow-up in that time goes on in it (no fetch, no setup); 0 keeps none.",
    ),
  PATCHBAY_FOLLOWUP_MAX_KEPT: wholeNumber(0, 256)
    .default(4)
    .describe(
      'Most sandboxes one worker keeps for follow-ups at once (on top of its running tasks); past it the oldest goes.',
    ),
  PATCHBAY_JOB_LOCK_SECONDS: wholeNumber(1, 600)
    .default(30)
    .describe(
      "How long a worker's hold on a task lasts unrenewed: a killed worker's task runs again after about this long.",
    ),
  PATCHBAY_STALLED_CHECK_SECONDS: wholeNumber(1, 600)
    .default(15)
    .describe('How often workers look for tasks whose worker died.'),
  PATCHBAY_METRICS_TOKEN: z
    .string()
    .min(16, { error: 'expected at least 16 characters' })
    .optional()
    .describe(
      'When set, /metrics (API and worker) answers only requests with Authorization: Bearer <token> (secret).',
    ),
  PATCHBAY_WORKER_METRICS_PORT: wholeNumber(0, 65535)
    .default(0)
    .describe("Port of the worker's own /metrics server; 0 turns it off."),
  PATCHBAY_WORKER_METRICS_HOST: z
    .string()
    .min(1)
    .default('127.0.0.1')
    .describe("Address the worker's /metrics server listens on."),
  PATCHBAY_ADMIN_KEY: z
    .string()
    .min(16, { error: 'expected at least 16 characters' })
    .optional()
    .describe(
      'Key of the queue dashboard at /admin/queues (Authorization: Bearer, or basic auth with any user); the dashboard is off when unset (secret).',
    ),
  PATCHBAY_ENV_CACHE_BYTES: byteSize
    .prefault('10g')
    .describe(
      'Most bytes of setup snapshots a worker keeps (least recently used go first); 0 turns the environment cache off.',
    ),
  PATCHBAY_ENV_CACHE_TTL_SECONDS: wholeNumber(60, 30 * 86_400)
    .default(43_200)
    .describe('Age past which a setup snapshot is not used.'),
  PATCHBAY_ENV_CACHE_S3_BUCKET: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'expected an S3 bucket name')
    .optional()
    .describe(
      'Bucket where workers share setup snapshots (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the usual AWS chain); each worker keeps its own only when unset.',
    ),
  PATCHBAY_ENV_CACHE_S3_ENDPOINT: url
    .optional()
    .describe('URL of an S3-compatible server (MinIO, Ceph, R2, …); AWS S3 when unset.'),
  PATCHBAY_ENV_CACHE_S3_REGION: z
    .string()
    .min(1)
    .default('us-east-1')
    .describe('Region of the snapshot bucket.'),
  PATCHBAY_ENV_CACHE_S3_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9._/-]{1,200}$/)
    .default('patchbay/environments')
    .describe('Key prefix of the shared snapshots.'),
  PATCHBAY_ARTIFACTS_S3_BUCKET: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'expected an S3 bucket name')
    .optional()
    .describe(
      'Bucket holding patches, transcripts and archived event logs, shared by the API and every worker (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the usual AWS chain); under PATCHBAY_DATA_DIR/artifacts when unset.',
    ),
  PATCHBAY_ARTIFACTS_S3_ENDPOINT: url
    .optional()
    .describe('URL of an S3-compatible server (MinIO, Ceph, R2, …); AWS S3 when unset.'),
  PATCHBAY_ARTIFACTS_S3_REGION: z
    .string()
    .min(1)
    .default('us-east-1')
    .describe('Region of the artifact bucket.'),
  PATCHBAY_ARTIFACTS_S3_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9._/-]{1,200}$/)
    .default('patchbay/artifacts')
    .describe('Key prefix of the artifacts (`<prefix>/<task id>/<name>`).'),
  PATCHBAY_PUBLIC_URL: url
    .optional()
    .describe(
      'Base URL people reach this API at, for links in pull requests and webhooks; http://HOST:PORT when unset.',
    ),
  PATCHBAY_GIT_CREDENTIALS: gitCredentials
    .optional()
    .describe(
      'Push and forge-API credentials per host: comma-separated host=token or host=user:token (secret).',
    ),
  PATCHBAY_GIT_CREDENTIALS_FILE: z
    .string()
    .min(1)
    .optional()
    .describe('A file of host=token lines, read at start (merged under PATCHBAY_GIT_CREDENTIALS).'),
  PATCHBAY_GITHUB_APPS: githubApps
    .prefault('')
    .describe(
      'GitHub Apps Patchbay acts as, per host: comma-separated host=appId:/path/to/private-key.pem; pushes, pull requests and comments there use an installation token of the app for the repository.',
    ),
  PATCHBAY_FORGES: forges
    .prefault('')
    .describe(
      'Pull-request APIs per host: host=kind[:apiUrl], kind github, gitlab, gitea or bitbucket (github.com, gitlab.com, bitbucket.org and codeberg.org are known).',
    ),
  PATCHBAY_GIT_AUTHOR: z
    .string()
    .regex(/^[^<>\n]+ <[^<>\s]+>$/, 'expected "Name <email>"')
    .default('Patchbay <patchbay@localhost>')
    .describe('Author and committer of delivered commits.'),
  PATCHBAY_WEBHOOKS: webhooks
    .optional()
    .describe(
      'Webhooks per tenant set by the operator: a JSON array of {tenant, url, secret, events?} (secret).',
    ),
  PATCHBAY_INTEGRATIONS: integrations
    .optional()
    .describe(
      'Forges whose comments and assignments start tasks: a JSON array of {tenant, forge (github, gitlab or gitea), secret, repos, mention?, login?, associations?, users?, task?} (secret).',
    ),
  PATCHBAY_WEBHOOK_ALLOW_HOSTS: repoHosts
    .prefault('')
    .describe(
      'Webhook hosts that may be (or resolve to) private, loopback or link-local addresses, e.g. hooks.internal or http://127.0.0.1:9000; none by default.',
    ),
  PATCHBAY_WEBHOOK_RETRY_HOURS: number
    .positive()
    .max(24 * 7)
    .default(24)
    .describe('How long a webhook delivery is retried before it is given up.'),
  PATCHBAY_WEBHOOK_BACKOFF_MS: wholeNumber(10, 3_600_000)
    .default(10_000)
    .describe(
      'Delay before the first retry of a webhook delivery; it doubles each time, up to an hour.',
    ),
  PATCHBAY_WEBHOOK_TIMEOUT_SECONDS: wholeNumber(1, 60)
    .default(10)
    .describe('How long a webhook receiver has to answer.'),
  PATCHBAY_SHUTDOWN_GRACE_SECONDS: nonNegativeInt
    .default(30)
    .describe(
      'On SIGTERM, how long running tasks may go on before they are cancelled and handed back.',
    ),
});
export type Env = z.infer<typeof EnvSchema>;

/** Variables whose values are never printed (a Redis URL may carry a password). */
const SECRET_VARIABLES = [
  'OPENAI_API_KEY',
  'REDIS_URL',
  'PATCHBAY_API_KEYS',
  'PATCHBAY_METRICS_TOKEN',
  'PATCHBAY_ADMIN_KEY',
  'PATCHBAY_GIT_CREDENTIALS',
  'PATCHBAY_WEBHOOKS',
  'PATCHBAY_INTEGRATIONS',
] as const satisfies readonly (keyof Env)[];

/** A bucket on S3 or an S3-compatible server, and the key prefix Patchbay uses in it. */
export interface S3Bucket {
  bucket: string;
  /** An S3-compatible server's URL; AWS S3 when undefined. */
  endpoint: string | undefined;
  region: string;
  prefix: string;
}

export interface Config {
  api: {
    host: string;
    port: number;
    /** Empty: one local tenant, no key, loopback only. */
    keys: ApiKey[];
    rateLimitPerMinute: number;
    maxActiveTasks: number;
    bodyLimitBytes: number;
    /** Key of the queue dashboard; the dashboard is off when undefined. */
    adminKey: string | undefined;
    /** The built web page; the API's default location when undefined. */
    webDir: string | undefined;
  };
  metrics: {
    /** Bearer token /metrics requires; open when undefined. */
    token: string | undefined;
    /** Port of the worker's metrics server; 0 = off. */
    workerPort: number;
    workerHost: string;
  };
  repos: {
    hosts: string[];
    allowSsh: boolean;
    /** Largest mirror of one repository, in bytes. */
    maxMirrorBytes: number;
    /** A ref fetched less than this long ago is resolved from the mirror; 0 always fetches. */
    refreshAfterMs: number;
  };
  tasks: {
    timeoutSeconds: number;
    maxTurns: number;
    maxTokens: number;
    maxAttempts: number;
    allowAgentNetwork: boolean;
    /** The agent runtimes tasks may ask for. */
    runtimes: AgentRuntime[];
    /** What allowlist networks may reach, and names pinned to addresses for the proxy. */
    egress: { domains: string[]; pinned: Record<string, string> };
    /** Largest patch a task may produce, in bytes. */
    maxPatchBytes: number;
  };
  log: { level: Env['LOG_LEVEL'] };
  redis: { url: string; prefix: string };
  dataDir: string;
  model: {
    apiKey: string | undefined;
    baseURL: string | undefined;
    name: string;
    wire: Env['PATCHBAY_MODEL_WIRE'];
  };
  docker: { host: string | undefined; tlsVerify: boolean; certPath: string | undefined };
  sandbox: {
    provider: Env['PATCHBAY_SANDBOX_PROVIDER'];
    runtime: string;
    image: string;
    memoryBytes: number;
    cpus: number;
    pids: number;
    nofile: number;
    fsizeBytes: number;
    workspaceBytes: number;
    tmpBytes: number;
    homeBytes: number;
    warmPoolSize: number;
    warmPoolPreloads: number;
    reaperIntervalMs: number;
    maxAgeMs: number;
  };
  worker: {
    id: string;
    concurrency: number;
    shutdownGraceMs: number;
    lockDurationMs: number;
    stalledIntervalMs: number;
    /** How long a sandbox is kept for a follow-up after its turn; 0 keeps none. */
    keepAliveMs: number;
    /** Most sandboxes kept for follow-ups at once. */
    maxKept: number;
  };
  environments: {
    /** Most bytes of snapshots kept per worker; 0 = no cache. */
    maxBytes: number;
    ttlMs: number;
    /** Where workers share snapshots; undefined: each keeps its own. */
    s3: S3Bucket | undefined;
  };
  artifacts: {
    /** Where patches, transcripts and archived logs live; undefined: `${dataDir}/artifacts`. */
    s3: S3Bucket | undefined;
  };
  /** Base URL of the API for links back to a task. */
  publicUrl: string;
  delivery: {
    /** Push credentials by host (`host` or `host:port`). */
    credentials: Record<string, GitCredential>;
    /** GitHub Apps by host: their installation tokens are the credential there. */
    githubApps: Record<string, GitHubApp>;
    forges: Record<string, ForgeConfig>;
    author: { name: string; email: string };
  };
  /** Forges whose webhooks start tasks (mentions, assignments). */
  integrations: Integration[];
  webhooks: {
    configured: ConfiguredWebhook[];
    /** Host rules exempt from the private-address check. */
    allowHosts: string[];
    retryMs: number;
    backoffMs: number;
    timeoutMs: number;
  };
}

/** Thrown when the environment does not parse; its message is one line naming the variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Parses the environment once, at startup, into the typed config every app passes down. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings mean "unset", as in most shells' `FOO= cmd`.
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const parsed = EnvSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = String(issue?.path[0] ?? 'environment');
    const secret = (SECRET_VARIABLES as readonly string[]).includes(name);
    const got = secret ? '' : ` (got ${JSON.stringify(env[name] ?? '')})`;
    throw new ConfigError(`invalid configuration: ${name}: ${issue?.message ?? 'invalid'}${got}`);
  }
  const e = parsed.data;
  const author = /^(.+) <(.+)>$/.exec(e.PATCHBAY_GIT_AUTHOR)!;
  const apiHost = e.HOST.includes(':') ? `[${e.HOST}]` : e.HOST;
  return {
    api: {
      host: e.HOST,
      port: e.PORT,
      keys: e.PATCHBAY_API_KEYS ?? [],
      rateLimitPerMinute: e.PATCHBAY_RATE_LIMIT_PER_MINUTE,
      maxActiveTasks: e.PATCHBAY_MAX_ACTIVE_TASKS,
      bodyLimitBytes: e.PATCHBAY_BODY_LIMIT,
      adminKey: e.PATCHBAY_ADMIN_KEY,
      webDir: e.PATCHBAY_WEB_DIR,
    },
    metrics: {
      token: e.PATCHBAY_METRICS_TOKEN,
      workerPort: e.PATCHBAY_WORKER_METRICS_PORT,
      workerHost: e.PATCHBAY_WORKER_METRICS_HOST,
    },
    repos: {
      hosts: e.PATCHBAY_REPO_HOSTS,
      allowSsh: e.PATCHBAY_ALLOW_SSH,
      maxMirrorBytes: e.PATCHBAY_MAX_REPO_BYTES,
      refreshAfterMs: e.PATCHBAY_REF_REFRESH_SECONDS * 1000,
    },
    tasks: {
      timeoutSeconds: e.PATCHBAY_TASK_TIMEOUT_SECONDS,
      maxTurns: e.PATCHBAY_TASK_MAX_TURNS,
      maxTokens: e.PATCHBAY_TASK_MAX_TOKENS,
      maxAttempts: e.PATCHBAY_MAX_ATTEMPTS,
      allowAgentNetwork: e.PATCHBAY_ALLOW_AGENT_NETWORK,
      runtimes: e.PATCHBAY_RUNTIMES,
      egress: {
        domains: e.PATCHBAY_EGRESS_DOMAINS,
        pinned: Object.fromEntries(
          e.PATCHBAY_EGRESS_PINNED.map((entry) => entry.split('=', 2) as [string, string]),
        ),
      },
      maxPatchBytes: e.PATCHBAY_MAX_PATCH_BYTES,
    },
    log: { level: e.LOG_LEVEL },
    redis: { url: e.REDIS_URL, prefix: e.PATCHBAY_REDIS_PREFIX },
    dataDir: e.PATCHBAY_DATA_DIR,
    model: {
      apiKey: e.OPENAI_API_KEY,
      baseURL: e.OPENAI_BASE_URL,
      name: e.PATCHBAY_MODEL,
      wire: e.PATCHBAY_MODEL_WIRE,
    },
    docker: { host: e.DOCKER_HOST, tlsVerify: e.DOCKER_TLS_VERIFY, certPath: e.DOCKER_CERT_PATH },
    sandbox: {
      provider: e.PATCHBAY_SANDBOX_PROVIDER,
      runtime: e.PATCHBAY_SANDBOX_RUNTIME,
      image: e.PATCHBAY_SANDBOX_IMAGE,
      memoryBytes: e.PATCHBAY_SANDBOX_MEMORY,
      cpus: e.PATCHBAY_SANDBOX_CPUS,
      pids: e.PATCHBAY_SANDBOX_PIDS,
      nofile: e.PATCHBAY_SANDBOX_NOFILE,
      fsizeBytes: e.PATCHBAY_SANDBOX_FSIZE,
      workspaceBytes: e.PATCHBAY_SANDBOX_WORKSPACE_SIZE,
      tmpBytes: e.PATCHBAY_SANDBOX_TMP_SIZE,
      homeBytes: e.PATCHBAY_SANDBOX_HOME_SIZE,
      warmPoolSize: e.PATCHBAY_WARM_POOL_SIZE,
      warmPoolPreloads: e.PATCHBAY_WARM_POOL_PRELOADS,
      reaperIntervalMs: e.PATCHBAY_REAPER_INTERVAL_SECONDS * 1000,
      maxAgeMs: e.PATCHBAY_SANDBOX_MAX_AGE_SECONDS * 1000,
    },
    worker: {
      id: e.PATCHBAY_WORKER_ID,
      concurrency: e.PATCHBAY_WORKER_CONCURRENCY,
      shutdownGraceMs: e.PATCHBAY_SHUTDOWN_GRACE_SECONDS * 1000,
      lockDurationMs: e.PATCHBAY_JOB_LOCK_SECONDS * 1000,
      stalledIntervalMs: e.PATCHBAY_STALLED_CHECK_SECONDS * 1000,
      keepAliveMs: e.PATCHBAY_FOLLOWUP_KEEPALIVE_SECONDS * 1000,
      maxKept: e.PATCHBAY_FOLLOWUP_MAX_KEPT,
    },
    environments: {
      maxBytes: e.PATCHBAY_ENV_CACHE_BYTES,
      ttlMs: e.PATCHBAY_ENV_CACHE_TTL_SECONDS * 1000,
      s3:
        e.PATCHBAY_ENV_CACHE_S3_BUCKET === undefined
          ? undefined
          : {
              bucket: e.PATCHBAY_ENV_CACHE_S3_BUCKET,
              endpoint: e.PATCHBAY_ENV_CACHE_S3_ENDPOINT,
              region: e.PATCHBAY_ENV_CACHE_S3_REGION,
              prefix: e.PATCHBAY_ENV_CACHE_S3_PREFIX,
            },
    },
    artifacts: {
      s3:
        e.PATCHBAY_ARTIFACTS_S3_BUCKET === undefined
          ? undefined
          : {
              bucket: e.PATCHBAY_ARTIFACTS_S3_BUCKET,
              endpoint: e.PATCHBAY_ARTIFACTS_S3_ENDPOINT,
              region: e.PATCHBAY_ARTIFACTS_S3_REGION,
              prefix: e.PATCHBAY_ARTIFACTS_S3_PREFIX,
            },
    },
    publicUrl: (e.PATCHBAY_PUBLIC_URL ?? `http://${apiHost}:${e.PORT}`).replace(/\/+$/, ''),
    delivery: {
      credentials: {
        ...readCredentialsFile(e.PATCHBAY_GIT_CREDENTIALS_FILE),
        ...e.PATCHBAY_GIT_CREDENTIALS,
      },
      githubApps: e.PATCHBAY_GITHUB_APPS,
      forges: e.PATCHBAY_FORGES,
      author: { name: author[1]!, email: author[2]! },
    },
    integrations: e.PATCHBAY_INTEGRATIONS ?? [],
    webhooks: {
      configured: e.PATCHBAY_WEBHOOKS ?? [],
      allowHosts: e.PATCHBAY_WEBHOOK_ALLOW_HOSTS,
      retryMs: e.PATCHBAY_WEBHOOK_RETRY_HOURS * 3_600_000,
      backoffMs: e.PATCHBAY_WEBHOOK_BACKOFF_MS,
      timeoutMs: e.PATCHBAY_WEBHOOK_TIMEOUT_SECONDS * 1000,
    },
  };
}

/** The credentials file's entries; a file that cannot be read or parsed stops start. */
function readCredentialsFile(path: string | undefined): Record<string, GitCredential> {
  if (path === undefined) return {};
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `invalid configuration: PATCHBAY_GIT_CREDENTIALS_FILE: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  const parsed = gitCredentials.safeParse(text);
  if (!parsed.success) {
    throw new ConfigError(
      `invalid configuration: PATCHBAY_GIT_CREDENTIALS_FILE: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
    );
  }
  return parsed.data;
}

/** The config with every secret replaced, fit for a log line. */
export function redactConfig(config: Config): Config {
  return {
    ...config,
    api: {
      ...config.api,
      keys: config.api.keys.map((k) => ({ tenant: k.tenant, sha256: '[redacted]' })),
      adminKey: config.api.adminKey === undefined ? undefined : '[redacted]',
    },
    metrics: {
      ...config.metrics,
      token: config.metrics.token === undefined ? undefined : '[redacted]',
    },
    redis: { ...config.redis, url: redactUrl(config.redis.url) },
    model: {
      ...config.model,
      apiKey: config.model.apiKey === undefined ? undefined : '[redacted]',
    },
    delivery: {
      ...config.delivery,
      credentials: Object.fromEntries(
        Object.entries(config.delivery.credentials).map(([host, c]) => [
          host,
          { username: c.username, token: '[redacted]' },
        ]),
      ),
      githubApps: Object.fromEntries(
        Object.entries(config.delivery.githubApps).map(([host, app]) => [
          host,
          { appId: app.appId, privateKey: '[redacted]' },
        ]),
      ),
    },
    integrations: config.integrations.map((i) => ({ ...i, secret: '[redacted]' })),
    webhooks: {
      ...config.webhooks,
      configured: config.webhooks.configured.map((w) => ({ ...w, secret: '[redacted]' })),
    },
  };
}

/** Drops the password (and user) from a URL such as `redis://:secret@host:6379`. */
function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password !== '' || u.username !== '') {
      u.username = u.username === '' ? '' : '[redacted]';
      u.password = u.password === '' ? '' : '[redacted]';
    }
    return u.toString();
  } catch {
    return '[unparseable url]';
  }
}
