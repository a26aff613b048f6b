import { execFile } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const compose = `${root}infra/compose.yaml`;

interface ComposeService {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  group_add?: string[];
  ports?: unknown[];
}

describe('infra/compose.yaml', () => {
  // docker-compose comes with provisioning (infra/local/system-packages.sh).
  it('validates with docker-compose config', async () => {
    const env = { ...process.env, PATCHBAY_API_KEYS: 'me:0123456789abcdef0123' };
    const { stdout } = await run('docker-compose', ['-f', compose, 'config', '--quiet'], { env });
    expect(stdout).toBe('');
    // Without API keys it refuses, rather than starting an API that would not listen.
    const unset = { ...process.env, PATCHBAY_API_KEYS: '' };
    await expect(
      run('docker-compose', ['-f', compose, 'config', '--quiet'], { env: unset }),
    ).rejects.toThrow(/set PATCHBAY_API_KEYS/);
  });

  it('runs persistent Redis, the API and a worker on the host engine from one service image', async () => {
    const file = parse(await readFile(compose, 'utf8')) as {
      services: Record<string, ComposeService>;
      volumes: Record<string, unknown>;
    };
    expect(Object.keys(file.services).sort()).toEqual(['api', 'redis', 'worker']);
    const { redis, api, worker } = file.services;
    expect(redis!.command!.join(' ')).toContain('--appendonly yes');
    expect(redis!.command!.join(' ')).toContain('--maxmemory-policy noeviction');
    expect(redis!.command!.join(' ')).toContain('--stream-node-max-bytes 1024');
    expect(redis!.volumes).toContain('redis-data:/data');
    expect(api!.image).toBe(worker!.image);
    expect(api!.command).toEqual(['api']);
    expect(worker!.command).toEqual(['worker']);
    // Only the worker gets the Docker socket; both share the artifact volume.
    expect(worker!.volumes).toContain('/var/run/docker.sock:/var/run/docker.sock');
    expect(api!.volumes).not.toContain('/var/run/docker.sock:/var/run/docker.sock');
    expect(api!.volumes).toContain('patchbay-data:/data');
    expect(worker!.volumes).toContain('patchbay-data:/data');
    expect(worker!.environment!.PATCHBAY_SANDBOX_IMAGE).toContain('patchbay/sandbox:latest');
    expect(Object.keys(file.volumes).sort()).toEqual(['patchbay-data', 'redis-data']);
  });
});

describe('infra/k8s', () => {
  it('has the API Deployment and Service, worker Deployment, Redis StatefulSet, config and probes', async () => {
    const dir = `${root}infra/k8s/`;
    const kustomization = parse(await readFile(`${dir}kustomization.yaml`, 'utf8')) as {
      resources: string[];
    };
    const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml'));
    for (const resource of kustomization.resources) expect(files).toContain(resource);
    const objects: { kind: string; metadata: { name: string }; spec?: any }[] = [];
    for (const file of files) {
      for (const doc of parseAllDocuments(await readFile(`${dir}${file}`, 'utf8'))) {
        expect(doc.errors, file).toEqual([]);
        const value = doc.toJSON() as (typeof objects)[number] | null;
        if (value && 'kind' in value && value.kind !== 'Kustomization') objects.push(value);
      }
    }
    const names = objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    expect(names).toEqual(
      expect.arrayContaining([
        'ConfigMap/patchbay-config',
        'Deployment/patchbay-api',
        'Deployment/patchbay-worker',
        'PersistentVolumeClaim/patchbay-data',
        'Secret/patchbay-secrets',
        'Service/patchbay-api',
        'Service/redis',
        'StatefulSet/redis',
      ]),
    );
    const api = objects.find((o) => o.metadata.name === 'patchbay-api' && o.kind === 'Deployment');
    const container = api!.spec.template.spec.containers[0];
    expect(container.readinessProbe).toBeDefined();
    expect(container.livenessProbe).toBeDefined();
    expect(
      container.securityContext.runAsNonRoot ??
        api!.spec.template.spec.securityContext.runAsNonRoot,
    ).toBe(true);
    const redis = objects.find((o) => o.kind === 'StatefulSet');
    expect(redis!.spec.template.spec.containers[0].args.join(' ')).toContain('noeviction');
  });
});

// The first build on a machine takes minutes (Node download, npm ci); later ones hit the layer
// cache unless dependencies changed.
describe('docker/service image', () => {
  const tag = 'patchbay/service:test';
  it('builds from the local base image, runs as non-root and starts the API and worker code', async () => {
    await run('bash', [`${root}docker/service/build.sh`, tag], { maxBuffer: 64 * 1024 * 1024 });
    const { stdout: uid } = await run('docker', ['run', '--rm', tag, 'id', '-u']);
    expect(uid.trim()).toBe('10001');
    // A bad config proves the whole TypeScript program loads and parses its config in the image.
    for (const command of ['api', 'worker']) {
      const result = await run('docker', ['run', '--rm', '-e', 'PORT=nope', tag, command]).then(
        () => ({ code: 0, stderr: '' }),
        (err: { code: number; stderr: string }) => err,
      );
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('PORT');
    }
  }, 900_000);
});
