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
export {
  ERROR_CODES,
  PatchbayError,
  isPatchbayError,
  type ErrorCode,
  type PatchbayErrorOptions,
} from './errors.js';
