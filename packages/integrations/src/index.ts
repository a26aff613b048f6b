import type { ForgeConfig } from '@patchbay/core';
import { type OperatorCredentials, forHost, forgeClient } from '@patchbay/delivery';
import type { ForgeFor } from './payloads.js';

export { MentionIntake, type IntakeDeps, type IntakeOutcome } from './intake.js';
export type { ForgeFor, ForgeName } from './payloads.js';
export { Replier, startReplyConsumer, type ReplyJob } from './replies.js';

/**
 * The API of a repository's forge, with the operator's credential for its host: null when the
 * host has none, or is set up as another kind of forge than the one that sent the webhook.
 */
export function forgeAccess(
  forges: Record<string, ForgeConfig>,
  credentials: OperatorCredentials,
): ForgeFor {
  return async (repoUrl, kind) => {
    const forge = forHost(repoUrl, forges);
    if (forge?.kind !== kind) return null;
    const credential = await credentials.for(repoUrl);
    return credential ? forgeClient(forge, credential.token) : null;
  };
}
