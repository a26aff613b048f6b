export { createDockerClient } from './docker.js';
export { DockerSandboxProvider } from './provider.js';
export type { DockerSandbox } from './docker-sandbox.js';
export { LABELS } from './container.js';
export {
  sandboxOptionsFromConfig,
  type DockerSandboxProviderOptions,
  type ReapReason,
  type ReapReport,
  type ResolvedProviderOptions,
  type SandboxLogger,
  type SandboxOwner,
} from './options.js';
export type {
  ExecOptions,
  ExecResult,
  Sandbox,
  SandboxLimits,
  SandboxProvider,
  SandboxSpec,
} from './types.js';
