import { deferToTurnEnd } from '@patchbay/core';
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
   * The commands issued in one event-loop turn leave in one socket write (see
   * {@link coalesceWrites}): for a client shared by many concurrent requests.
   * @default false
   */
  coalesceWrites?: boolean;
}

/**
 * Creates an ioredis client that reconnects forever with capped backoff. BullMQ needs
 * `maxRetriesPerRequest: null` on the connections it blocks on; fail-fast clients keep one retry.
 */
export function createRedis(options: RedisConnectionOptions): Redis {
  const redis = new Redis(options.url, {
    maxRetriesPerRequest: options.failFast ? 1 : null,
    enableOfflineQueue: !options.failFast,
    connectTimeout: 5000,
    retryStrategy: (attempt: number) => Math.min(50 * 2 ** attempt, 2000),
    ...(options.name === undefined ? {} : { connectionName: options.name }),
  });
  // ioredis emits 'error' on every failed reconnect; without a listener Node would crash.
  redis.on('error', () => {});
  if (options.coalesceWrites === true) coalesceWrites(redis);
  return redis;
}

/**
 * Holds the client's writes until the end of the event-loop turn and sends them as one: the
 * socket is corked at the turn's first command and uncorked at the turn's end, after the I/O the
 * turn handles ({@link deferToTurnEnd}: a batch sent from that end leaves with it, not a turn
 * later). Each command is still its own call with its own reply; only the syscalls are
 * shared (a write to a loopback socket also wakes and feeds the reader). ioredis's
 * auto-pipelining merges writes too, but wraps each batch in a pipeline that copies every script
 * the client defines (BullMQ defines some sixty): under GET load it cost the API a fifth more CPU
 * than this (bench/RESULTS.md).
 */
function coalesceWrites(redis: Redis): void {
  const send = redis.sendCommand.bind(redis);
  let corked = false;
  redis.sendCommand = (command, stream) => {
    const socket = redis.stream;
    if (!corked && redis.status === 'ready' && socket.writable) {
      corked = true;
      socket.cork();
      deferToTurnEnd(() => {
        corked = false;
        socket.uncork();
      });
    }
    return send(command, stream);
  };
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
