export {
  ConfigError,
  EnvSchema,
  SECRET_VARIABLES,
  loadConfig,
  redactConfig,
  redactUrl,
  type Config,
  type Env,
} from './config.js';
export { StartupError, runMain } from './main.js';
