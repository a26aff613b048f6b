import { ConfigError } from './config.js';

/**
 * Runs an app's entry point. A configuration error ends the process with one readable line and
 * exit code 2; anything else that escapes `main` is printed with its stack and exit code 1.
 */
export function runMain(name: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    if (err instanceof ConfigError || err instanceof StartupError) {
      process.stderr.write(`${name}: ${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(
      `${name}: fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  });
}

/** An expected reason not to start (port taken, dependency down): printed as one line, no stack. */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}
