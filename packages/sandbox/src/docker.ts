import Docker from 'dockerode';

/** Builds a dockerode client for `DOCKER_HOST` (unix:// or tcp://), or the local socket. */
export function createDockerClient(host?: string): Docker {
  if (host === undefined) return new Docker({ socketPath: '/var/run/docker.sock' });
  const url = new URL(host);
  if (url.protocol === 'unix:') return new Docker({ socketPath: url.pathname });
  return new Docker({
    host: url.hostname,
    port: Number(url.port || 2375),
    protocol: url.protocol === 'https:' ? 'https' : 'http',
  });
}
