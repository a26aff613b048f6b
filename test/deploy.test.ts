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
      'x-service-env': Record<string, string>;
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
    // Only the worker gets the Docker socket; on one host both share the artifact volume, or the
    // bucket when one is set.
    expect(worker!.volumes).toContain('/var/run/docker.sock:/var/run/docker.sock');
    expect(api!.volumes).not.toContain('/var/run/docker.sock:/var/run/docker.sock');
    expect(api!.volumes).toContain('patchbay-data:/data');
    expect(worker!.volumes).toContain('patchbay-data:/data');
    // Both take their environment from the shared anchor.
    expect(file['x-service-env'].PATCHBAY_ARTIFACTS_S3_BUCKET).toBe(
      '${PATCHBAY_ARTIFACTS_S3_BUCKET:-}',
    );
    expect(worker!.environment!.PATCHBAY_SANDBOX_IMAGE).toContain('patchbay/sandbox:latest');
    expect(Object.keys(file.volumes).sort()).toEqual(['patchbay-data', 'redis-data']);
  });
});

describe('infra/compose.worker.yaml', () => {
  const file = `${root}infra/compose.worker.yaml`;
  const shared = {
    REDIS_URL: 'redis://:pw@redis.example:6379',
    PATCHBAY_ARTIFACTS_S3_BUCKET: 'patchbay-artifacts',
  };

  it('validates, and refuses to start a worker without the shared Redis or the bucket', async () => {
    const env = { ...process.env, ...shared };
    expect((await run('docker-compose', ['-f', file, 'config', '--quiet'], { env })).stdout).toBe(
      '',
    );
    for (const missing of Object.keys(shared)) {
      const without = { ...process.env, ...shared, [missing]: '' };
      await expect(
        run('docker-compose', ['-f', file, 'config', '--quiet'], { env: without }),
      ).rejects.toThrow(new RegExp(`set ${missing}`));
    }
  });

  it('is one worker that shares no volume with anything: caches only', async () => {
    const parsed = parse(await readFile(file, 'utf8')) as {
      services: Record<string, ComposeService>;
      volumes: Record<string, unknown>;
    };
    expect(Object.keys(parsed.services)).toEqual(['worker']);
    expect(parsed.services.worker!.volumes).toEqual([
      '/var/run/docker.sock:/var/run/docker.sock',
      'worker-cache:/data',
    ]);
    expect(Object.keys(parsed.volumes)).toEqual(['worker-cache']);
  });
});

describe('infra/k8s', () => {
  it('needs no privilege and no shared volume: artifacts in a bucket, engines on their nodes over TLS', async () => {
    const dir = `${root}infra/k8s/`;
    const texts = await Promise.all(
      (await readdir(dir))
        .filter((f) => f.endsWith('.yaml'))
        .map(async (f) => readFile(`${dir}${f}`, 'utf8')),
    );
    const all = texts.join('\n');
    expect(all).not.toMatch(/privileged:\s*true/);
    expect(all).not.toMatch(/ReadWriteMany/);
    expect(all).not.toMatch(/hostPath|docker\.sock|PersistentVolumeClaim|claimName/);
    const docs = texts.flatMap((t) => parseAllDocuments(t).map((d) => d.toJSON()));
    const config = docs.find((d) => d?.kind === 'ConfigMap');
    expect(config.data.PATCHBAY_ARTIFACTS_S3_BUCKET).toBeTruthy();
    const worker = docs.find((d) => d?.metadata?.name === 'patchbay-worker');
    expect(worker.kind).toBe('DaemonSet');
    const pod = worker.spec.template.spec;
    expect(pod.containers).toHaveLength(1);
    const env = Object.fromEntries(
      pod.containers[0].env.map((e: { name: string; value?: string }) => [e.name, e.value]),
    );
    expect(env.DOCKER_HOST).toBe('tcp://$(HOST_IP):2376');
    expect(env.DOCKER_TLS_VERIFY).toBe('1');
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.containers[0].securityContext.capabilities.drop).toEqual(['ALL']);
    expect(pod.containers[0].securityContext.allowPrivilegeEscalation).toBe(false);
    for (const volume of pod.volumes) expect(Object.keys(volume).sort()).not.toContain('hostPath');
  });

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
        'DaemonSet/patchbay-worker',
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
