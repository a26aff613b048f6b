import type { Redis } from 'ioredis';

/** A cached environment as listed (see the pipeline's EnvironmentCache). */
export interface EnvironmentRecord {
  /** sha256 of tenant, repository, image id, setup, env and the cache-key files' contents. */
  key: string;
  tenant: string;
  repo: string;
  image: string;
  /** The commit whose setup made it. */
  commit: string;
  /** The compressed snapshot's size and SHA-256. */
  bytes: number;
  sha256: string;
  createdAt: string;
  lastUsedAt: string;
  worker: string;
}

/**
 * The list of cached environments per tenant, in Redis: workers add and refresh entries, the API
 * lists and drops them, and a worker uses a snapshot only while it is listed here.
 */
export class RedisEnvironmentIndex {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(options: { redis: Redis; prefix: string }) {
    this.#redis = options.redis;
    this.#prefix = `${options.prefix}:environments`;
  }

  async get(tenant: string, key: string): Promise<EnvironmentRecord | null> {
    const raw = await this.#redis.hget(this.#key(tenant), key);
    return raw === null ? null : (JSON.parse(raw) as EnvironmentRecord);
  }

  async put(entry: EnvironmentRecord): Promise<void> {
    await this.#redis.hset(this.#key(entry.tenant), entry.key, JSON.stringify(entry));
  }

  async remove(tenant: string, key: string): Promise<void> {
    await this.#redis.hdel(this.#key(tenant), key);
  }

  /** The tenant's entries, most recently used first; only those of `repo` when given. */
  async list(tenant: string, repo?: string): Promise<EnvironmentRecord[]> {
    const all = Object.values(await this.#redis.hgetall(this.#key(tenant))).map(
      (raw) => JSON.parse(raw) as EnvironmentRecord,
    );
    return all
      .filter((e) => repo === undefined || e.repo === repo)
      .sort((a, b) => b.lastUsedAt.localeCompare(a.lastUsedAt));
  }

  /** Drops the tenant's entries (of `repo` only, when given); how many went. */
  async drop(tenant: string, repo?: string): Promise<number> {
    const gone = await this.list(tenant, repo);
    if (gone.length > 0) await this.#redis.hdel(this.#key(tenant), ...gone.map((e) => e.key));
    return gone.length;
  }

  #key(tenant: string): string {
    return `${this.#prefix}:${tenant}`;
  }
}
