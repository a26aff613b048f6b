import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { writeTinyModel } from './gguf.js';
import { freePort } from './stack.js';

/**
 * A real llama.cpp `llama-server` (built by infra/local/llama-server.sh) on 127.0.0.1, serving a
 * tiny generated model: random weights, or a script it writes whatever it is asked. The server,
 * its chat template, sampling, tool-call parsing, streaming and usage are the real ones.
 */
export interface LlamaServer {
  /** Base URL with `/v1`, as OPENAI_BASE_URL takes it. */
  url: string;
  /** The server's own log (its stderr), for messages when a test fails. */
  log(): string;
  /** Token ids of `text`, as this model's tokenizer splits it. */
  tokenize(text: string): Promise<number[]>;
  close(): Promise<void>;
}

/** The binary, from PATCHBAY_LLAMA_SERVER; the suite fails loudly without it. */
export function llamaServerBinary(): string {
  const binary = process.env.PATCHBAY_LLAMA_SERVER;
  if (!binary) {
    throw new Error(
      'PATCHBAY_LLAMA_SERVER is not set: run this suite with `npm run test:compat`, which builds llama-server (infra/local/llama-server.sh) and sets it',
    );
  }
  return binary;
}

export interface LlamaServerOptions {
  binary: string;
  /** What the model writes: token pieces, each exactly one token, ending with `<|im_end|>`. */
  script?: readonly number[];
  /** Most tokens a reply may have (`-n`). @default 64 */
  maxTokens?: number;
}

/** The tokenizer and the chat template ship with the llama.cpp source, beside the binary. */
function assets(binary: string): { vocab: string; template: string } {
  const dir = dirname(binary);
  return {
    vocab: join(dir, 'ggml-vocab-qwen2.gguf'),
    template: join(dir, 'templates', 'Qwen-Qwen2.5-7B-Instruct.jinja'),
  };
}

export async function startLlamaServer(options: LlamaServerOptions): Promise<LlamaServer> {
  const dir = await mkdtemp(join(tmpdir(), 'patchbay-llama-'));
  const model = join(dir, 'model.gguf');
  const { vocab, template } = assets(options.binary);
  // The generation prompt ends with "\n" after `<|im_start|>assistant`: the script starts there.
  const chain = options.script === undefined ? undefined : [NEWLINE, ...options.script];
  const successors =
    chain && new Map(chain.slice(0, -1).map((id, i) => [id, chain[i + 1]!] as [number, number]));
  await writeTinyModel({
    vocabPath: vocab,
    chatTemplate: await readFile(template, 'utf8'),
    outPath: model,
    ...(successors === undefined ? {} : { successors }),
  });
  const port = await freePort();
  const child: ChildProcess = spawn(
    options.binary,
    [
      ...['-m', model, '--host', '127.0.0.1', '--port', String(port)],
      ...['-c', '32768', '-np', '2', '-t', '1', '-n', String(options.maxTokens ?? 64)],
      ...['--seed', '1', '--no-webui'],
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString('utf8')).slice(-20_000);
  });
  const exited = once(child, 'exit');
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`llama-server exited at start: ${log.slice(-2000)}`);
    const health = await fetch(`${base}/health`).catch(() => undefined);
    if (health?.ok) break;
    if (Date.now() > deadline) throw new Error(`llama-server did not start: ${log.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `${base}/v1`,
    log: () => log,
    tokenize: async (text) => {
      const res = await fetch(`${base}/tokenize`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ content: text, parse_special: true }),
      });
      return ((await res.json()) as { tokens: number[] }).tokens;
    },
    close: async () => {
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** `\n`: the last token of the prompt, where every script starts. */
const NEWLINE = 198;

/**
 * The token ids of a script written as pieces, each of which must be one token of its own and
 * none twice (the scripted model's next token depends on the current one only).
 */
export async function scriptTokens(
  server: LlamaServer,
  pieces: readonly (string | number)[],
): Promise<number[]> {
  const ids: number[] = [];
  for (const piece of pieces) {
    if (typeof piece === 'number') {
      ids.push(piece);
      continue;
    }
    const tokens = await server.tokenize(piece);
    if (tokens.length !== 1) throw new Error(`"${piece}" is ${tokens.length} tokens, not one`);
    ids.push(tokens[0]!);
  }
  if (new Set([NEWLINE, ...ids]).size !== ids.length + 1)
    throw new Error(`a script may not repeat a token (or use "\\n" alone): ${pieces.join('|')}`);
  return ids;
}
