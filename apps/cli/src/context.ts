import type { Command } from 'commander';
import { ApiError, PatchbayClient, UnreachableError } from './client.js';

/** Exit codes of every `patchbay` command, stable for scripts. */
export const EXIT = {
  /** The command did what was asked; for task-waiting commands, the task succeeded. */
  ok: 0,
  /** The task failed or was cancelled, or a local step (such as applying the patch) refused. */
  failed: 1,
  /** Bad arguments or options. */
  usage: 2,
  /** The server could not be reached or answered with an error status. */
  server: 3,
} as const;

/** The default server: what `npm start` listens on. */
export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

/** Options every command accepts (declared once, on the program). */
export interface GlobalOptions {
  server?: string;
  key?: string;
  json?: boolean;
}

/** What a command action gets: a client, output mode and the streams it writes to. */
export interface CommandContext {
  client: PatchbayClient;
  server: string;
  json: boolean;
  /** True when stdout is a terminal: progress and colour only then. */
  tty: boolean;
  out: (text: string) => void;
}

/**
 * Resolves flags over environment over defaults (flags win, so one shell can talk to two
 * servers). The CLI reads its own two variables here rather than through the service's config:
 * they configure a client, not the service.
 */
function contextFor(command: Command): CommandContext {
  const options = command.optsWithGlobals<GlobalOptions>();
  const server = options.server ?? process.env.PATCHBAY_URL ?? DEFAULT_SERVER;
  const key = options.key ?? (process.env.PATCHBAY_API_KEY || undefined);
  return {
    // `patchbay mcp` submits for an MCP client: the server records that as the task's origin.
    client: new PatchbayClient({
      baseUrl: server,
      apiKey: key,
      client: command.name() === 'mcp' ? 'mcp' : 'cli',
    }),
    server,
    json: options.json === true,
    tty: process.stdout.isTTY === true,
    out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  };
}

/**
 * Wraps a command action so that server errors become one line on stderr and exit code 3
 * instead of a stack trace; the action's own return value is the exit code.
 */
export function action<A extends unknown[]>(
  run: (ctx: CommandContext, ...args: A) => Promise<number>,
): (...args: [...A, Command]) => Promise<void> {
  return async (...args) => {
    const command = args.at(-1) as Command;
    const ctx = contextFor(command);
    try {
      process.exitCode = await run(ctx, ...(args.slice(0, -1) as A));
    } catch (err) {
      if (err instanceof UnreachableError) {
        process.stderr.write(`patchbay: ${err.message}\n`);
        process.exitCode = EXIT.server;
      } else if (err instanceof ApiError) {
        process.stderr.write(`patchbay: server said ${err.status} ${err.code}: ${err.message}\n`);
        process.exitCode = EXIT.server;
      } else {
        throw err;
      }
    }
  };
}

/** Exit code of a task that has reached a terminal status. */
export function exitFor(status: string): number {
  return status === 'succeeded' ? EXIT.ok : EXIT.failed;
}
