export { createSandboxProvider, sandboxHealthCheck, type ProviderDeps } from './factory.js';
export {
  DockerSandboxProvider,
  LABELS,
  createDockerClient,
  type DockerSandbox,
  type DockerSandboxProviderOptions,
  type ReapReason,
  type ReapReport,
  type ResolvedProviderOptions,
  type SandboxOwner,
} from './docker/index.js';
export type {
  ExecOptions,
  ExecResult,
  Reach,
  Sandbox,
  SandboxLimits,
  SandboxNetwork,
  SandboxPreload,
  SandboxProvider,
  SandboxService,
  SandboxSpec,
} from './types.js';
