import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * A Lua script run by SHA with a fallback to EVAL on `NOSCRIPT`, so the source crosses the wire
 * once per Redis restart rather than on every call (appends are the hot path of a running task).
 */
export class LuaScript {
  private readonly sha: string;

  constructor(
    private readonly source: string,
    private readonly numberOfKeys: number,
    /**
     * `repeated`: the script takes any number of items of `numberOfKeys` keys each, after
     * `sharedKeys` keys common to all of them (none by default).
     */
    private readonly options: { repeated?: boolean; sharedKeys?: number } = {},
  ) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(
    redis: Redis,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> {
    const itemKeys = keys.length - (this.options.sharedKeys ?? 0);
    const fits = this.options.repeated
      ? itemKeys > 0 && itemKeys % this.numberOfKeys === 0
      : keys.length === this.numberOfKeys;
    if (!fits) {
      throw new Error(`script expects ${this.numberOfKeys} keys, got ${keys.length}`);
    }
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return await redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}
