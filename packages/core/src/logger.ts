/**
 * The logger every package takes: pino's shape (an object of fields, then a message), so the
 * apps pass their pino child loggers as they are and tests pass {@link silentLogger}. The openai
 * SDK's own logger option is the one exception (`ModelLogger` in packages/agent): its shape is
 * the SDK's.
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const nothing = (): void => {};

/** Says nothing. */
export const silentLogger: Logger = {
  debug: nothing,
  info: nothing,
  warn: nothing,
  error: nothing,
};
