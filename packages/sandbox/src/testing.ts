export { TEST_IMAGE, removeNamespace, testProvider } from './docker/test-support.js';
