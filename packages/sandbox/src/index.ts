export { createDockerClient } from './docker.js';
export { createSandboxProvider, sandboxHealthCheck, type ProviderDeps } from './factory.js';
export { DockerSandboxProvider } from './provider.js';
export type { DockerSandbox } from './docker-sandbox.js';
export { LABELS } from './container.js';
export { ensureInternalNetwork } from './networks.js';
export {
  type DockerSandboxProviderOptions,
  type ReapReason,
  type ReapReport,
  type ResolvedProviderOptions,
  type SandboxOwner,
} from './options.js';
export type {
  ExecOptions,
  ExecResult,
  Sandbox,
  SandboxLimits,
  SandboxNetwork,
  SandboxProvider,
  SandboxSpec,
} from './types.js';
