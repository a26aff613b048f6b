import { z } from 'zod';
import { abortErrorFrom } from './abort.js';
import { parseShellApplyPatch, runApplyPatch, shellPatchWorkdir } from './apply-patch.js';
import { clipExecOutput, renderClipped } from './output.js';
import { toolParameters } from './schema.js';
import type { Tool, ToolContext, ToolLimits, ToolResult } from './types.js';
import { ToolInputError, resolveWorkdir } from './workspace.js';

/** Longest timeout a model can ask for in JSON, before the run's own cap (24 h). */
const TIMEOUT_CEILING_MS = 24 * 60 * 60 * 1000;

const Timeout = z
  .number({ error: 'timeout_ms must be a number of milliseconds' })
  .int()
  .positive()
  .max(TIMEOUT_CEILING_MS);

/** The arguments as offered to the model (the JSON Schema is generated from this). */
const ShellParameters = z.object({
  command: z
    .union([z.string().min(1), z.array(z.string()).min(1)], {
      error:
        'command must be a non-empty string (run with bash -lc) or a non-empty array of strings (argv)',
    })
    .describe(
      'The command: a string is run with `bash -lc`; an array is run as argv without a shell, e.g. ["rg", "-n", "foo"].',
    ),
  workdir: z
    .string()
    .optional()
    .describe(
      'Working directory, relative to /workspace or absolute inside it. Default: /workspace.',
    ),
  timeout_ms: Timeout.optional().describe('Kill the command after this many milliseconds.'),
});

/** The arguments as accepted: also `timeout`, the name older Codex harnesses used. */
export const ShellArgs = ShellParameters.extend({ timeout: Timeout.optional() }).transform(
  ({ timeout, timeout_ms, ...rest }) => ({ ...rest, timeout_ms: timeout_ms ?? timeout }),
);
export type ShellArgs = z.infer<typeof ShellArgs>;

const DESCRIPTION =
  'Runs a command in the sandbox and returns its exit code, wall time and output (stdout and stderr interleaved). ' +
  'The repository is at /workspace, the default working directory. ' +
  'Long output is cut to its beginning and end with a marker saying how much was left out; narrow it with rg, head, tail or sed -n. ' +
  'Use the apply_patch tool, not shell, to edit files.';

/**
 * How long a command may run: what it asked for (else the default), at most the per-command
 * maximum, and never past the run's deadline (`timeoutMs` is 0 when that has passed).
 * `byDeadline` says the deadline, not the command's own timeout, set the limit.
 */
export function commandTimeout(
  requested: number | undefined,
  context: Pick<ToolContext, 'limits' | 'deadline'>,
  now = Date.now(),
): { timeoutMs: number; byDeadline: boolean } {
  const { defaultCommandTimeoutMs, maxCommandTimeoutMs } = context.limits;
  const wanted = Math.min(requested ?? defaultCommandTimeoutMs, maxCommandTimeoutMs);
  const left = Math.max(0, context.deadline - now);
  return left < wanted
    ? { timeoutMs: left, byDeadline: true }
    : { timeoutMs: wanted, byDeadline: false };
}

/** Runs one shell call; exported apart from the tool for tests. */
export async function runShell(args: ShellArgs, context: ToolContext): Promise<ToolResult> {
  const workdir = resolveWorkdir(args.workdir, context.workspace);
  const patch = parseShellApplyPatch(args.command);
  if (patch !== undefined)
    return runApplyPatch(
      patch.patch,
      shellPatchWorkdir(patch, workdir, context.workspace),
      context,
    );

  const { timeoutMs, byDeadline } = commandTimeout(args.timeout_ms, context);
  if (timeoutMs <= 0) {
    throw new ToolInputError('the command was not run: the task has no time left');
  }
  const { eventOutputBytes, modelOutputBytes } = context.limits;
  const result = await context.sandbox.exec(args.command, {
    cwd: workdir,
    timeoutMs,
    maxOutputBytes: eventOutputBytes,
    signal: context.signal,
  });
  if (result.aborted || context.signal.aborted) throw abortErrorFrom(context.signal);

  const clipped = clipExecOutput(result.output, result.droppedBytes, eventOutputBytes);
  const forModel = renderClipped(clipped, modelOutputBytes);
  const forEvent = renderClipped(clipped, eventOutputBytes);

  const notes: string[] = [];
  if (result.timedOut) {
    notes.push(
      byDeadline
        ? `The command was killed after ${timeoutMs} ms: the task's time is running out.`
        : `The command timed out after ${timeoutMs} ms and was killed.`,
    );
  } else if (result.oomKilled) {
    notes.push('The command was killed: the sandbox ran out of memory.');
  } else if (result.exitCode === null && result.signal !== null) {
    notes.push(`The command was killed by ${result.signal}.`);
  }
  const output = [
    `Exit code: ${result.exitCode ?? 'none'}`,
    `Wall time: ${(result.durationMs / 1000).toFixed(1)} seconds`,
    ...notes,
    forModel.omittedBytes > 0 ? `Total output: ${forModel.totalBytes} bytes` : undefined,
    'Output:',
    forModel.text,
  ]
    .filter((line) => line !== undefined)
    .join('\n');

  return {
    output,
    ok: result.exitCode === 0,
    exitCode: result.exitCode,
    durationMs: result.durationMs,
    eventOutput: [...notes, forEvent.text].join('\n'),
    ...(forEvent.omittedBytes > 0 ? { eventDroppedBytes: forEvent.omittedBytes } : {}),
  };
}

/** The `shell` tool; its description states the timeouts in force. */
export function createShellTool(
  limits: Pick<ToolLimits, 'defaultCommandTimeoutMs' | 'maxCommandTimeoutMs'>,
): Tool<ShellArgs> {
  const timeouts = ` Commands time out after ${formatDuration(limits.defaultCommandTimeoutMs)} unless timeout_ms says otherwise (at most ${formatDuration(limits.maxCommandTimeoutMs)}).`;
  return {
    definition: {
      name: 'shell',
      description: `${DESCRIPTION}${timeouts}`,
      parameters: toolParameters(ShellParameters),
    },
    args: ShellArgs,
    run: runShell,
  };
}

function formatDuration(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}
