import path from 'node:path';
import type { Sandbox } from '@patchbay/sandbox';

export interface AgentsMdOptions {
  /** The repository's directory in the sandbox. */
  workspace: string;
  /** Most bytes of AGENTS.md content included, all files together. */
  maxBytes: number;
  /** Most files looked at. */
  maxFiles: number;
  /** Deepest level searched, as `find -maxdepth` counts: the root's AGENTS.md is at 1. */
  maxDepth: number;
  /** Longest the search may take; a slow one gives up and uses what it found. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

/** The repository's agent instructions, ready to put in front of the task. */
export interface AgentsMd {
  /** The message text; undefined when the repository has no AGENTS.md. */
  text: string | undefined;
  /** The files found, root first, as absolute paths. */
  files: string[];
  /** Bytes of AGENTS.md content left out to stay within `maxBytes`. */
  omittedBytes: number;
}

/**
 * Directories never searched: dependencies and build output hold other projects' AGENTS.md,
 * which say nothing about this repository, and can be huge to walk.
 */
const PRUNED = [
  '.git',
  'node_modules',
  '.venv',
  'venv',
  'vendor',
  'third_party',
  'target',
  'dist',
  'build',
];

/**
 * Finds the repository's `AGENTS.md` files (https://agents.md) and formats them the way the
 * reference harness (openai/codex) presents them to its models: a heading naming the directory
 * and the content inside `<INSTRUCTIONS>` tags, root first, then nested files by depth.
 *
 * Only regular files are read (`find` does not follow symbolic links), so a link named
 * AGENTS.md cannot pull text in from outside the repository.
 */
export async function loadAgentsMd(sandbox: Sandbox, options: AgentsMdOptions): Promise<AgentsMd> {
  const pruned = PRUNED.flatMap((name, i) => (i === 0 ? ['-name', name] : ['-o', '-name', name]));
  const argv = [
    'find',
    options.workspace,
    '-maxdepth',
    String(options.maxDepth),
    '(',
    '-type',
    'd',
    '(',
    ...pruned,
    ')',
    ')',
    '-prune',
    '-o',
    '-type',
    'f',
    '-name',
    'AGENTS.md',
    '-print',
  ];
  const result = await sandbox.exec(argv, {
    timeoutMs: options.timeoutMs,
    maxOutputBytes: 256 * 1024,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  options.signal?.throwIfAborted();
  const lines = result.output.toString('utf8').split('\n');
  // A search cut short may end in half a line; `find`'s complaints (unreadable directories) are
  // interleaved with its output and start with `find:`, never with the workspace path.
  if (result.timedOut || result.droppedBytes > 0) lines.pop();
  const files = lines
    .filter((line) => line.startsWith(`${options.workspace}/`) && line.endsWith('/AGENTS.md'))
    .sort(byDepthThenName)
    .slice(0, options.maxFiles);

  const sections: string[] = [];
  const skipped: string[] = [];
  let budget = options.maxBytes;
  let omittedBytes = 0;
  for (const file of files) {
    let content: string;
    try {
      const bytes = await sandbox.readFile(file, {
        maxBytes: 1024 * 1024,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      content = bytes.toString('utf8').trim();
    } catch (err) {
      options.signal?.throwIfAborted();
      skipped.push(`${file} (could not be read: ${(err as Error).message})`);
      continue;
    }
    if (content === '') continue;
    const size = Buffer.byteLength(content, 'utf8');
    if (budget <= 0) {
      omittedBytes += size;
      skipped.push(file);
      continue;
    }
    let body = content;
    if (size > budget) {
      body = headBytes(content, budget);
      const dropped = size - Buffer.byteLength(body, 'utf8');
      omittedBytes += dropped;
      body += `\n[… truncated: ${dropped} more bytes of this file were left out; read it with shell if you need them …]`;
    }
    budget -= Math.min(size, budget);
    sections.push(
      `# AGENTS.md instructions for ${path.posix.dirname(file)}\n\n<INSTRUCTIONS>\n${body}\n</INSTRUCTIONS>`,
    );
  }
  if (sections.length === 0) return { text: undefined, files, omittedBytes };
  if (skipped.length > 0) {
    sections.push(
      `Not included (over the ${options.maxBytes}-byte limit for AGENTS.md content, or unreadable); read them with shell when you work in their directories:\n${skipped.map((f) => `- ${f}`).join('\n')}`,
    );
  }
  return { text: sections.join('\n\n'), files, omittedBytes };
}

function byDepthThenName(a: string, b: string): number {
  const depth = a.split('/').length - b.split('/').length;
  return depth !== 0 ? depth : a < b ? -1 : a > b ? 1 : 0;
}

/** The longest prefix of `text` of at most `limit` UTF-8 bytes, cut at a line end when near. */
function headBytes(text: string, limit: number): string {
  const buf = Buffer.from(text, 'utf8');
  let end = Math.min(limit, buf.length);
  while (end > 0 && end < buf.length && ((buf[end] ?? 0) & 0xc0) === 0x80) end--;
  const cut = buf.subarray(0, end).toString('utf8');
  const newline = cut.lastIndexOf('\n');
  return newline >= cut.length - 512 && newline > 0 ? cut.slice(0, newline) : cut;
}
