import { useEffect, useState } from 'preact/hooks';

/**
 * Calls `load` now and every `everyMs` while the tab is visible (and at once when it becomes
 * visible again); a slow answer is never overtaken by a later one.
 */
export function usePoll(load: () => Promise<void>, everyMs: number, deps: unknown[]): void {
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async (): Promise<void> => {
      clearTimeout(timer);
      if (document.visibilityState === 'visible') await load().catch(() => undefined);
      if (!stopped) timer = setTimeout(() => void tick(), everyMs);
    };
    const onVisible = (): void => {
      if (document.visibilityState === 'visible') void tick();
    };
    void tick();
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisible);
    };
    // The caller names what `load` depends on.
  }, deps);
}

/** The current time, redrawn every `everyMs` (ages and running durations). */
export function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}
