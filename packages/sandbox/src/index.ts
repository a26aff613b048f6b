export { createDockerClient } from './docker.js';
