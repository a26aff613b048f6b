/**
 * Holds a repository lock from another process, as a second worker would:
 * `node --import tsx test/support/lock-holder.ts <lock path> <hold ms>`. Prints `locked` once it
 * holds the lock, releases it after the hold and exits 0.
 */
import { acquireFileLock } from '@patchbay/git';

const [lockPath, holdMs] = process.argv.slice(2);
if (lockPath === undefined || holdMs === undefined) {
  process.stderr.write('usage: lock-holder.ts <lock path> <hold ms>\n');
  process.exit(2);
}
const lock = await acquireFileLock(lockPath);
console.log('locked');
setTimeout(() => void lock.release().then(() => process.exit(0)), Number(holdMs));
