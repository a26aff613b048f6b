export { createDockerClient } from './docker.js';
export type {
  ExecOptions,
  ExecResult,
  Sandbox,
  SandboxLimits,
  SandboxProvider,
  SandboxSpec,
} from './types.js';
