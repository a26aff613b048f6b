import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { PatchbayError } from '@patchbay/core';

/** Where the engine is, as the docker CLI reads it from its environment. */
export interface DockerEndpoint {
  /**
   * `DOCKER_HOST`: `unix:///path`, `tcp://host:port` (2376 with TLS, else 2375), `http(s)://…`
   * or `ssh://user@host[:port]` (the engine's socket through `ssh`, with the ssh agent's keys).
   * @default the local socket /var/run/docker.sock
   */
  host?: string | undefined;
  /** `DOCKER_TLS_VERIFY`: speak TLS, check the engine against `ca.pem`, show `cert.pem`. */
  tlsVerify?: boolean | undefined;
  /** `DOCKER_CERT_PATH`: holds `ca.pem`, `cert.pem` and `key.pem`. @default ~/.docker */
  certPath?: string | undefined;
}

function endpointError(message: string): PatchbayError {
  return new PatchbayError('sandbox_error', message);
}

/** The dockerode options for an endpoint: TLS material read once, here. */
function dockerClientOptions(endpoint: DockerEndpoint = {}): Docker.DockerOptions {
  const { host, tlsVerify = false } = endpoint;
  if (host === undefined) return { socketPath: '/var/run/docker.sock' };
  const url = new URL(host);
  switch (url.protocol) {
    case 'unix:':
      return { socketPath: url.pathname };
    case 'ssh:':
      return {
        protocol: 'ssh',
        host: url.hostname,
        port: Number(url.port || 22),
        ...(url.username === '' ? {} : { username: decodeURIComponent(url.username) }),
        sshOptions: { ...(process.env.SSH_AUTH_SOCK ? { agent: process.env.SSH_AUTH_SOCK } : {}) },
      };
    case 'tcp:':
    case 'http:':
    case 'https:': {
      const tls = tlsVerify || url.protocol === 'https:';
      const options: Docker.DockerOptions = {
        host: url.hostname,
        port: Number(url.port || (tls ? 2376 : 2375)),
        protocol: tls ? 'https' : 'http',
      };
      if (!tlsVerify) return options;
      const dir = endpoint.certPath ?? join(homedir(), '.docker');
      const read = (file: string): Buffer => {
        try {
          return readFileSync(join(dir, file));
        } catch (err) {
          throw endpointError(
            `DOCKER_TLS_VERIFY is set but ${join(dir, file)} cannot be read (${(err as Error).message}); DOCKER_CERT_PATH must hold ca.pem, cert.pem and key.pem`,
          );
        }
      };
      return { ...options, ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem') };
    }
    default:
      throw endpointError(`DOCKER_HOST ${host}: use unix://, tcp://, https:// or ssh://`);
  }
}

/** A dockerode client for an endpoint (the local socket when none is given). */
export function createDockerClient(endpoint: DockerEndpoint | string = {}): Docker {
  return new Docker(
    dockerClientOptions(typeof endpoint === 'string' ? { host: endpoint } : endpoint),
  );
}

/**
 * Asks the engine to answer, and says clearly what stands in the way when it does not: a
 * worker must not start against an engine it cannot use.
 */
export async function checkEngine(docker: Docker, endpoint: DockerEndpoint): Promise<void> {
  const where = endpoint.host ?? 'unix:///var/run/docker.sock';
  try {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('no answer within 15 s')), 15_000);
    });
    await Promise.race([docker.ping(), timeout]).finally(() => clearTimeout(timer));
  } catch (err) {
    const message = (err as Error).message;
    const code = (err as { code?: string }).code ?? '';
    const tlsRefused =
      /certificate|handshake|alert|SSL|TLS|socket hang up|ECONNRESET/i.test(message) ||
      code.startsWith('ERR_SSL') ||
      code === 'ECONNRESET';
    if (endpoint.tlsVerify && tlsRefused)
      throw endpointError(
        `the Docker engine at ${where} refused this worker's TLS client certificate or the worker refused the engine's (${message}); DOCKER_CERT_PATH must hold a client certificate (cert.pem, key.pem) the engine's CA signed and that CA (ca.pem)`,
      );
    throw endpointError(`the Docker engine at ${where} does not answer: ${message}`);
  }
}
