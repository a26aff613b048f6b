import { REDIS_URL } from '@patchbay/core/testing';
import { Redis } from 'ioredis';

export { deletePrefix, makeTask, uniquePrefix } from '@patchbay/core/testing';

export function testRedis(): Redis {
  return new Redis(REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: false });
}
