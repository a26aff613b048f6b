import { Redis } from 'ioredis';

export interface RedisConnectionOptions {
  /** `redis://[:password@]host:port[/db]`. */
  url: string;
  /** Connection name shown by `CLIENT LIST`, for telling components apart. */
  name?: string;
  /**
   * Commands issued while disconnected fail at once instead of waiting for Redis to come back,
   * so that an API request answers 503 promptly when Redis is down. Wait for {@link whenReady}
   * before serving, or the first commands fail too.
   * @default false
   */
  failFast?: boolean;
  /**
   * Commands issued in the same event-loop turn go to Redis as one pipeline (ioredis
   * `enableAutoPipelining`): fewer writes and reads on a client shared by many concurrent
   * requests (scripts excepted, see below). Not for connections that block (`XREAD BLOCK`,
   * BullMQ workers) or subscribe.
   * @default false
   */
  autoPipelining?: boolean;
}

/**
 * Creates an ioredis client that reconnects forever with capped backoff. BullMQ needs
 * `maxRetriesPerRequest: null` on the connections it blocks on; fail-fast clients keep one retry.
 */
export function createRedis(options: RedisConnectionOptions): Redis {
  const redis = new Redis(options.url, {
    maxRetriesPerRequest: options.failFast ? 1 : null,
    enableOfflineQueue: !options.failFast,
    enableAutoPipelining: options.autoPipelining ?? false,
    // Scripts go out on their own: their hot callers batch already (task creates, the rate
    // limit), and a pipeline around one large script call costs more than the call.
    autoPipeliningIgnoredCommands: ['eval', 'evalsha'],
    connectTimeout: 5000,
    retryStrategy: (attempt: number) => Math.min(50 * 2 ** attempt, 2000),
    ...(options.name === undefined ? {} : { connectionName: options.name }),
  });
  // ioredis emits 'error' on every failed reconnect; without a listener Node would crash.
  redis.on('error', () => {});
  return redis;
}

/** Resolves once the client is connected, or after `timeoutMs` whether it is or not. */
export async function whenReady(redis: Redis, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return true;
  return new Promise((resolve) => {
    const done = (ready: boolean): void => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      resolve(ready);
    };
    const onReady = (): void => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    redis.once('ready', onReady);
  });
}
