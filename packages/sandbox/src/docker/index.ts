/** The Docker engine's sandboxes: what the rest of the package (and tests) take from here. */
export { createDockerClient, type DockerEndpoint } from './client.js';
export { LABELS } from './container.js';
export {
  sandboxOptionsFromConfig,
  type DockerSandboxProviderOptions,
  type ReapReason,
  type ReapReport,
  type ResolvedProviderOptions,
  type SandboxOwner,
} from './options.js';
export { DockerSandboxProvider } from './provider.js';
export type { DockerSandbox } from './sandbox.js';
