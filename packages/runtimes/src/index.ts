export { CliRuntime, type CliAgent, type CliTranslator } from './cli-agent.js';
export { codexAgent } from './codex.js';
export { RuntimeRouter } from './router.js';
export { SandboxGateway, type SandboxGatewayOptions } from './sandbox-gateway.js';
