/**
 * Runs vitest (its arguments are this script's) with every sandbox on a remote engine: a
 * TLS-only second dockerd this script starts (tls-engine.ts), holding a copy of the sandbox
 * image, named to the suites only by DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH.
 * `npm test` runs the sandbox, hostile and codex suites this way.
 *
 *   node --import tsx test/support/remote-engine-pass.ts packages/sandbox test/hostile
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { startTlsEngine } from './tls-engine.js';

const image = process.env.PATCHBAY_SANDBOX_IMAGE ?? 'patchbay/sandbox:latest';
// The sandbox suites also try the base image, which has no exec server.
const base = process.env.PATCHBAY_BASE_IMAGE ?? 'patchbay/base:bookworm';
const engine = await startTlsEngine();
let code = 1;
try {
  await engine.copyImage(image);
  await engine.copyImage(base);
  process.stderr.write(`patchbay: the suites against a remote engine at ${engine.host} (TLS)\n`);
  const vitest = spawn('npx', ['vitest', 'run', ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, ...engine.env },
  });
  const [exit] = (await once(vitest, 'exit')) as [number | null];
  code = exit ?? 1;
} finally {
  await engine.close();
}
process.exit(code);
