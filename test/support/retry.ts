/**
 * Calls `probe` until it resolves (every `intervalMs`), for at most `timeoutMs`; then rethrows
 * its last error. `abort` may end the wait early with an error of its own (a process that exited).
 */
export async function retryUntilResolved<T>(
  probe: () => Promise<T>,
  options: { timeoutMs: number; intervalMs?: number; abort?: () => Error | undefined },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    try {
      return await probe();
    } catch (err) {
      const stop = options.abort?.();
      if (stop) throw stop;
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
    }
  }
}
