import { PatchbayError } from '@patchbay/core';
import type Docker from 'dockerode';
import { LABELS } from './container.js';

/**
 * Makes sure an internal network exists (no route out of it; containers on it cannot reach one
 * another either) and returns the host's address on it: where a service of the worker listens
 * for the sandboxes that join it, and nowhere else.
 */
export async function ensureInternalNetwork(
  docker: Docker,
  name: string,
): Promise<{ hostAddress: string }> {
  const network = docker.getNetwork(name);
  let info = await network.inspect().catch(() => null);
  if (info === null) {
    await docker
      .createNetwork({
        Name: name,
        Driver: 'bridge',
        Internal: true,
        CheckDuplicate: true,
        Labels: { [LABELS.managed]: 'true' },
        Options: { 'com.docker.network.bridge.enable_icc': 'false' },
      })
      .catch((err: unknown) => {
        // Another worker made it meanwhile: use theirs.
        if (!/already exists/i.test((err as Error).message)) throw err;
      });
    info = await network.inspect();
  }
  const { Internal, IPAM } = info as {
    Internal?: boolean;
    IPAM?: { Config?: { Gateway?: string }[] };
  };
  const hostAddress = IPAM?.Config?.find((c) => c.Gateway)?.Gateway;
  if (Internal !== true || hostAddress === undefined)
    throw new PatchbayError(
      'sandbox_error',
      `network ${name} exists but is not an internal network with a host address; remove it`,
    );
  return { hostAddress };
}
