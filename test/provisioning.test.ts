import { loadConfig } from '@patchbay/core';
import { createRedis } from '@patchbay/queue';
import { createDockerClient } from '@patchbay/sandbox';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';

const config = loadConfig();

describe('the local stack', () => {
  const redis = createRedis({ url: config.redis.url });
  afterAll(() => redis.disconnect());

  it('runs Redis with AOF persistence, noeviction and small stream nodes', async () => {
    expect(await redis.ping()).toBe('PONG');
    expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    expect(await redis.config('GET', 'maxmemory-policy')).toEqual([
      'maxmemory-policy',
      'noeviction',
    ]);
    expect(await redis.config('GET', 'stream-node-max-bytes')).toEqual([
      'stream-node-max-bytes',
      '1024',
    ]);
  });

  it('has a sandbox image whose default user is not root and has git, node and python3', async () => {
    const docker = createDockerClient(config.docker.host);
    const output = new PassThrough();
    const chunks: Buffer[] = [];
    output.on('data', (chunk: Buffer) => chunks.push(chunk));
    const [result, container] = (await docker.run(
      config.sandbox.image,
      [
        'bash',
        '-c',
        'id -u; id -un; pwd; git --version; node --version; python3 --version; rg --version | head -1',
      ],
      output,
      { Tty: true, HostConfig: { AutoRemove: true, NetworkMode: 'none' } },
    )) as [{ StatusCode: number }, unknown];
    expect(container).toBeDefined();
    const lines = Buffer.concat(chunks).toString('utf8').split(/\r?\n/);
    expect(result.StatusCode, lines.join('\n')).toBe(0);
    const [uid, user, cwd, git, node, python, ripgrep] = lines;
    expect(Number(uid)).toBeGreaterThan(0);
    expect(user).toBe('agent');
    expect(cwd).toBe('/workspace');
    expect(git).toMatch(/^git version 2\./);
    expect(node).toMatch(/^v2[2-9]\./);
    expect(python).toMatch(/^Python 3\./);
    expect(ripgrep).toMatch(/^ripgrep /);
  });
});
