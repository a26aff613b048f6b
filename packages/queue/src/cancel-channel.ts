import type { Redis } from 'ioredis';

export interface CancelChannelOptions {
  /** Client used to publish; shared, owned by the caller. */
  redis: Redis;
  /** Patchbay's key prefix; the channel is `${prefix}:cancel`. */
  prefix: string;
  /**
   * Makes the dedicated subscriber connection (a subscribed connection can run nothing else).
   * It is created on the first `subscribe` and closed by `close`.
   * @default () => redis.duplicate()
   */
  createSubscriber?: () => Redis;
  /**
   * Receives errors thrown by handlers.
   * @default ignore
   */
  onError?: (err: unknown) => void;
}

export type CancelHandler = (taskId: string) => void;

/**
 * Carries "cancel task X" from any API instance to every worker over Redis pub/sub; the worker
 * running X aborts it. Pub/sub is fire-and-forget: a worker that is reconnecting at that moment
 * misses the message, so the task record's `cancelRequested` flag remains the source of truth
 * that workers also check.
 */
export class CancelChannel {
  readonly channel: string;
  private readonly redis: Redis;
  private readonly createSubscriber: () => Redis;
  private readonly onError: (err: unknown) => void;
  private readonly handlers = new Set<CancelHandler>();
  private subscriber: Promise<Redis> | undefined;
  private closed = false;

  constructor(options: CancelChannelOptions) {
    this.channel = `${options.prefix}:cancel`;
    this.redis = options.redis;
    this.createSubscriber = options.createSubscriber ?? (() => options.redis.duplicate());
    this.onError = options.onError ?? (() => {});
  }

  /** Announces a cancel; resolves to the number of subscribed connections that received it. */
  async publish(taskId: string): Promise<number> {
    return await this.redis.publish(this.channel, taskId);
  }

  /**
   * Calls `handler` with the id of every task cancelled from now on. Resolves once the
   * subscription is active; the returned function removes the handler.
   */
  async subscribe(handler: CancelHandler): Promise<() => void> {
    if (this.closed) throw new Error('cancel channel is closed');
    this.handlers.add(handler);
    try {
      await (this.subscriber ??= this.connect());
    } catch (err) {
      this.handlers.delete(handler);
      this.subscriber = undefined;
      throw err;
    }
    return () => {
      this.handlers.delete(handler);
    };
  }

  /** Closes the subscriber connection. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handlers.clear();
    const subscriber = await this.subscriber?.catch(() => undefined);
    // QUIT waits for Redis to drop the subscription, so nothing is delivered after close returns.
    await subscriber?.quit().catch(() => subscriber.disconnect());
  }

  private async connect(): Promise<Redis> {
    const subscriber = this.createSubscriber();
    // A duplicate does not inherit the listeners of its original: without one, ioredis reports
    // every failed reconnect while Redis is down as an unhandled error.
    subscriber.on('error', () => {});
    subscriber.on('message', (channel: string, taskId: string) => {
      if (channel !== this.channel) return;
      for (const handler of this.handlers) {
        try {
          handler(taskId);
        } catch (err) {
          this.onError(err);
        }
      }
    });
    try {
      // ioredis subscribes again by itself after a reconnect.
      await subscriber.subscribe(this.channel);
    } catch (err) {
      subscriber.disconnect();
      throw err;
    }
    return subscriber;
  }
}
