import { randomUUID } from 'node:crypto';
import { EMPTY_USAGE, type Task, newTurn } from './task.js';

/** A valid queued task record for tests, with `overrides` on top. */
export function makeTask(overrides: Partial<Task> = {}): Task {
  const createdAt = new Date().toISOString();
  const base: Task = {
    id: randomUUID(),
    tenant: 'acme',
    status: 'queued',
    phase: null,
    createdAt,
    startedAt: null,
    finishedAt: null,
    repo: { url: 'https://github.com/org/repo.git', ref: 'main' },
    prompt: 'Fix the bug.',
    environment: {
      image: 'patchbay/sandbox:latest',
      setup: null,
      verify: null,
      env: {},
      secretNames: [],
      network: 'none',
      allowDomains: [],
      cacheKey: [],
      setupAlways: false,
      maintenance: null,
    },
    model: { name: 'gpt-5-codex', reasoningEffort: null },
    agent: { runtime: 'patchbay' },
    limits: { timeoutSeconds: 1800, maxTurns: 80, maxTokens: 2_000_000 },
    baseCommit: null,
    result: null,
    usage: EMPTY_USAGE,
    error: null,
    tries: 0,
    attempts: 1,
    models: [],
    cancelRequested: false,
    turn: 1,
    turns: [],
    delivery: null,
    notify: null,
    timings: null,
    origin: { kind: 'api' },
    ...overrides,
  };
  return overrides.turns === undefined
    ? { ...base, turns: [newTurn(base, 1, base.prompt, base.createdAt)] }
    : base;
}

/** Tests talk to the real Redis of the environment, each under its own key prefix. */
export const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

export function uniquePrefix(name: string): string {
  return `test-${name}-${randomUUID().slice(0, 8)}`;
}

/** What {@link deletePrefix} needs of a Redis client (ioredis's `scan` and `unlink`). */
export interface KeyDeleter {
  scan(
    cursor: string,
    match: 'MATCH',
    pattern: string,
    count: 'COUNT',
    n: number,
  ): Promise<[string, string[]]>;
  unlink(...keys: string[]): Promise<number>;
}

/** Deletes every key under `${prefix}:` (never anything else: the Redis is shared). */
export async function deletePrefix(redis: KeyDeleter, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
}
