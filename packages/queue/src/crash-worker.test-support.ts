// A worker process for the crash test: takes one job, says so on stdout, then hangs until it is
// killed. Run with `node --import tsx crash-worker.test-support.ts <redis-url> <prefix>`.
import { createTaskWorker } from './task-worker.js';

const [url, prefix] = process.argv.slice(2);
if (url === undefined || prefix === undefined) throw new Error('usage: <redis-url> <prefix>');

createTaskWorker({
  url,
  prefix,
  lockDuration: 1000,
  stalledInterval: 500,
  processor: async (taskId, { try: attempt }) => {
    process.stdout.write(`started ${taskId} ${attempt}\n`);
    await new Promise(() => {});
  },
});
