export {
  TEST_GVISOR,
  TEST_IMAGE,
  docker,
  removeNamespace,
  testProvider,
} from './docker/test-support.js';
