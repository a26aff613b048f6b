export { createRedis, type RedisConnectionOptions } from './redis.js';
