import { z } from 'zod';
import { applyPatch } from '../apply-patch/apply.js';
import { isApplyPatchError, type AffectedPaths } from '../apply-patch/errors.js';
import { abortErrorFrom } from './abort.js';
import { toolParameters } from './schema.js';
import { SandboxPatchFileSystem } from './sandbox-file-system.js';
import type { Tool, ToolContext, ToolResult } from './types.js';
import { resolveWorkdir } from './workspace.js';

export const ApplyPatchArgs = z.object({
  input: z
    .string({ error: 'input must be a string holding the whole patch' })
    .describe('The entire contents of the patch, from *** Begin Patch to *** End Patch.'),
});
export type ApplyPatchArgs = z.infer<typeof ApplyPatchArgs>;

// Worded after the reference tool's own instructions (openai/codex, apply_patch_tool_instructions),
// which the Codex models are trained on.
const DESCRIPTION = `Use the \`apply_patch\` tool to edit files. Paths are relative to /workspace (never absolute). The patch format:

*** Begin Patch
[ one or more file sections ]
*** End Patch

Each file section starts with one of:
*** Add File: <path> - create a new file; every following line starts with +
*** Delete File: <path> - remove an existing file; nothing follows
*** Update File: <path> - patch an existing file in place, optionally followed by *** Move to: <new path> to rename it

An update holds one or more hunks, each introduced by @@ (optionally followed by a line such as a class or function header to locate it). Inside a hunk every line starts with ' ' (context), '-' (removed) or '+' (added). Show 3 lines of context above and below each change; when that is not unique, add @@ lines naming the enclosing class or function. Do not use line numbers.

Example:
*** Begin Patch
*** Add File: hello.txt
+Hello world
*** Update File: src/app.py
*** Move to: src/main.py
@@ def greet():
-print("Hi")
+print("Hello, world!")
*** Delete File: obsolete.txt
*** End Patch`;

/**
 * Applies a patch in the sandbox with paths relative to `workdir` (inside /workspace). A refused
 * patch is an ordinary result the model reads and corrects: the message says what failed and
 * which files an earlier part of the patch had already changed.
 */
export async function runApplyPatch(
  patch: string,
  workdir: string,
  context: ToolContext,
): Promise<ToolResult> {
  const started = Date.now();
  const fs = new SandboxPatchFileSystem(context.sandbox, {
    root: workdir,
    boundary: context.workspace,
    signal: context.signal,
  });
  try {
    const result = await applyPatch(patch, fs);
    return patchResult(true, result.summary, Date.now() - started);
  } catch (err) {
    if (context.signal.aborted) throw abortErrorFrom(context.signal);
    if (!isApplyPatchError(err)) throw err;
    const applied = describeApplied(err.applied);
    return patchResult(false, `${err.message}${applied}`, Date.now() - started);
  }
}

function patchResult(ok: boolean, text: string, durationMs: number): ToolResult {
  // The same shape as a shell result: Codex models read apply_patch output this way.
  const output = `Exit code: ${ok ? 0 : 1}\nWall time: ${(durationMs / 1000).toFixed(1)} seconds\nOutput:\n${text}`;
  return { output, ok, exitCode: ok ? 0 : 1, durationMs, eventOutput: text };
}

function describeApplied(applied: AffectedPaths): string {
  const lines = [
    ...applied.added.map((p) => `A ${p}`),
    ...applied.modified.map((p) => `M ${p}`),
    ...applied.deleted.map((p) => `D ${p}`),
  ];
  if (lines.length === 0) return '\nNo file was changed.';
  return `\nThe earlier parts of the patch were applied and are kept:\n${lines.join('\n')}`;
}

/** The `apply_patch` tool: `{ input }` holding a patch in the Codex format. */
export const applyPatchTool: Tool<ApplyPatchArgs> = {
  definition: {
    name: 'apply_patch',
    description: DESCRIPTION,
    parameters: toolParameters(ApplyPatchArgs),
  },
  args: ApplyPatchArgs,
  run: (args, context) => runApplyPatch(args.input, context.workspace, context),
};

/** A patch the model tried to apply through `shell`, and the directory it is relative to. */
export interface ShellPatchInvocation {
  patch: string;
  /** `cd <dir> &&` before the command, relative to the call's workdir; undefined when none. */
  cd: string | undefined;
}

const APPLY_PATCH_NAMES = new Set(['apply_patch', 'applypatch']);
const SHELLS = new Set(['bash', 'sh', 'zsh', '/bin/bash', '/bin/sh', '/usr/bin/bash']);
const SHELL_FLAGS = new Set(['-c', '-lc']);
// `[cd <dir> &&] apply_patch <<['"]TAG['"] … TAG` — the heredoc form the Codex models write.
const HEREDOC =
  /^\s*(?:cd\s+(?<dir>'[^']*'|"[^"]*"|[^\s;&|'"]+)\s*&&\s*)?(?:apply_patch|applypatch)\s*<<-?\s*(?<q>['"]?)(?<tag>[A-Za-z_][A-Za-z0-9_]*)\k<q>[ \t]*\r?\n(?<body>[\s\S]*?)\r?\n[ \t]*\k<tag>[ \t]*\s*$/;
// `[cd <dir> &&] apply_patch '<patch>'` — the patch as one single-quoted argument.
const QUOTED =
  /^\s*(?:cd\s+(?<dir>'[^']*'|"[^"]*"|[^\s;&|'"]+)\s*&&\s*)?(?:apply_patch|applypatch)\s+'(?<body>[^']*)'\s*$/;

/**
 * Recognises a `shell` call that runs `apply_patch`, as models trained on the Codex harness often
 * emit: `["apply_patch", "<patch>"]`, or a script (string, or `bash -lc <script>`) feeding it a
 * heredoc. The sandbox has no `apply_patch` program; routing such calls to the applier is what
 * makes them work, as in the reference harness.
 */
export function parseShellApplyPatch(
  command: string | readonly string[],
): ShellPatchInvocation | undefined {
  let script: string;
  if (typeof command === 'string') {
    script = command;
  } else {
    const [first, second, third] = command;
    if (first === undefined) return undefined;
    if (APPLY_PATCH_NAMES.has(first) && second !== undefined && command.length === 2) {
      return { patch: second, cd: undefined };
    }
    if (
      SHELLS.has(first) &&
      second !== undefined &&
      SHELL_FLAGS.has(second) &&
      third !== undefined &&
      command.length === 3
    ) {
      script = third;
    } else {
      return undefined;
    }
  }
  if (!/\b(?:apply_patch|applypatch)\b/.test(script)) return undefined;
  const match = HEREDOC.exec(script) ?? QUOTED.exec(script);
  const body = match?.groups?.['body'];
  if (match === null || body === undefined) return undefined;
  return { patch: body, cd: unquote(match.groups?.['dir']) };
}

function unquote(word: string | undefined): string | undefined {
  if (word === undefined) return undefined;
  if (
    (word.startsWith("'") && word.endsWith("'")) ||
    (word.startsWith('"') && word.endsWith('"'))
  ) {
    return word.slice(1, -1);
  }
  return word;
}

/** The directory a shell-style patch applies in: the call's workdir, then its `cd`. */
export function shellPatchWorkdir(
  invocation: ShellPatchInvocation,
  workdir: string,
  workspace: string,
): string {
  return invocation.cd === undefined ? workdir : resolveWorkdir(invocation.cd, workspace, workdir);
}
