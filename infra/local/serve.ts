// Runs the API and one worker as child processes in the foreground, for `npm start`.
// Ctrl-C (or SIGTERM) stops both; if either dies, the other is stopped too.
import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { type Config, ConfigError, loadConfig } from '@patchbay/core';

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`patchbay: ${err.message}\n`);
  process.exit(2);
}
const { host, port } = config.api;
const base = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

function portAnswers(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const answer = (answers: boolean): void => {
      socket.destroy();
      resolve(answers);
    };
    socket.setTimeout(1000);
    socket.once('connect', () => answer(true));
    socket.once('error', () => answer(false));
    socket.once('timeout', () => answer(false));
  });
}

if (await portAnswers()) {
  process.stderr.write(
    `patchbay: already running on port ${port} (${base} answers); stop it first or set PORT\n`,
  );
  process.exit(1);
}

const children = new Set<ChildProcess>();
let stopping = false;

function run(name: string, entry: string): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], { stdio: 'inherit' });
  children.add(child);
  child.once('exit', (code, signal) => {
    children.delete(child);
    if (!stopping) {
      process.stderr.write(`patchbay: ${name} exited (${signal ?? `code ${code}`}); stopping\n`);
      stop(code === 0 || code === null ? 1 : code);
    } else if (children.size === 0) {
      process.exit(exitCode);
    }
  });
  return child;
}

let exitCode = 0;
function stop(code: number): void {
  if (stopping) return;
  stopping = true;
  exitCode = code;
  if (children.size === 0) process.exit(code);
  for (const child of children) child.kill('SIGTERM');
  // Bounded: a child that ignores SIGTERM is killed after the worker's grace period and a margin.
  setTimeout(() => {
    for (const child of children) child.kill('SIGKILL');
    process.exit(code);
  }, config.worker.shutdownGraceMs + 10_000).unref();
}
process.once('SIGINT', () => stop(0));
process.once('SIGTERM', () => stop(0));

run('api', 'apps/api/src/main.ts');
const deadline = Date.now() + 30_000;
while (!stopping && !(await healthy())) {
  if (Date.now() > deadline) {
    process.stderr.write(`patchbay: the API did not answer ${base}/healthz within 30s\n`);
    stop(1);
    break;
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
}
if (!stopping) {
  run('worker', 'apps/worker/src/main.ts');
  process.stdout.write(
    `patchbay: API listening on ${base} (GET ${base}/healthz), the web page at ${base}/; Ctrl-C stops\n`,
  );
}

async function healthy(): Promise<boolean> {
  try {
    return (await fetch(`${base}/healthz`)).ok;
  } catch {
    return false;
  }
}
