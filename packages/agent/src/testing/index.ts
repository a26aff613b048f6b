export {
  ScriptedModelServer,
  startScriptedModelServer,
  type ScriptedModelServerOptions,
} from './server.js';
export type {
  Fault,
  RecordedRequest,
  Script,
  ScriptItem,
  ScriptRequest,
  ScriptStep,
  ScriptedCall,
  ScriptedTurn,
  ScriptedUsage,
  Violation,
  Wire,
} from './script.js';
