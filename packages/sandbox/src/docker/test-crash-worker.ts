/**
 * A stand-in worker for lifecycle.test.ts: it makes one sandbox, says its container id on
 * stdout, then idles until the test kills it with SIGKILL.
 * Usage: node --import tsx test-crash-worker.ts <namespace> <workerId> <image>
 */
import { testProvider } from './test-support.js';

const [namespace, workerId, image] = process.argv.slice(2);
if (namespace === undefined || workerId === undefined || image === undefined) {
  throw new Error('usage: test-crash-worker.ts <namespace> <workerId> <image>');
}
// The suite's engine and runtime, from the same environment.
const provider = testProvider({ namespace, workerId });
const sandbox = await provider.create({ image, taskId: 'crashing-task' });
await sandbox.exec(['true']);
process.stdout.write(`${JSON.stringify({ id: sandbox.id })}\n`);
setInterval(() => {}, 1 << 30);
