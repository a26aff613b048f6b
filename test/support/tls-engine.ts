import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './stack.js';
import { PrivateEngine } from './private-engine.js';

const run = promisify(execFile);

/**
 * A second Docker engine on this machine that a worker can only reach as a remote one: a
 * `dockerd` of its own (data root, exec root, pidfile, bridge) listening on TCP with TLS and
 * client certificates required, and on nothing else (no unix socket). Certificates are made here
 * by `openssl`: a CA, the engine's (for 127.0.0.1), a client's it signed, and a rogue client's
 * signed by another CA.
 */
export interface TlsEngine {
  /** `tcp://127.0.0.1:<port>`, for DOCKER_HOST. */
  host: string;
  /** DOCKER_CERT_PATH of a client the engine accepts. */
  certPath: string;
  /** DOCKER_CERT_PATH of a client whose certificate another CA signed. */
  rogueCertPath: string;
  /** The environment a worker uses it with. */
  env: Record<string, string>;
  /** Ids of the containers on this engine with a label (`key=value`). */
  containers(label: string): Promise<string[]>;
  /** Copies an image from the shared engine (no registry here). */
  copyImage(image: string): Promise<void>;
  close(): Promise<void>;
}

async function openssl(cwd: string, args: string[]): Promise<void> {
  await run('openssl', args, { cwd });
}

/** A CA, and a certificate it signs for `cn` (with the extensions in `ext`). */
async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(dir, ['genrsa', '-out', `${name}-key.pem`, '2048']);
  await openssl(dir, [
    'req',
    '-x509',
    '-new',
    '-key',
    `${name}-key.pem`,
    '-days',
    '1',
    '-subj',
    `/CN=${name}`,
    '-out',
    `${name}.pem`,
  ]);
}

async function signed(dir: string, ca: string, out: string, cn: string, ext: string) {
  await openssl(dir, ['genrsa', '-out', join(out, 'key.pem'), '2048']);
  await openssl(dir, [
    'req',
    '-new',
    '-key',
    join(out, 'key.pem'),
    '-subj',
    `/CN=${cn}`,
    '-out',
    join(out, 'req.csr'),
  ]);
  await writeFile(join(out, 'ext.cnf'), ext);
  await openssl(dir, [
    'x509',
    '-req',
    '-in',
    join(out, 'req.csr'),
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}-key.pem`,
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    join(out, 'ext.cnf'),
    '-out',
    join(out, 'cert.pem'),
  ]);
}

export async function startTlsEngine(): Promise<TlsEngine> {
  const dir = await mkdtemp(join(tmpdir(), 'pb-tls-engine-'));
  const [server, client, rogue] = ['server', 'client', 'rogue'].map((d) => join(dir, d)) as [
    string,
    string,
    string,
  ];
  await Promise.all([server, client, rogue].map((d) => mkdir(d)));
  await makeCa(dir, 'ca');
  await makeCa(dir, 'other-ca');
  await signed(
    dir,
    'ca',
    server,
    'engine',
    'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n',
  );
  await signed(dir, 'ca', client, 'worker', 'extendedKeyUsage=clientAuth\n');
  await signed(dir, 'other-ca', rogue, 'rogue', 'extendedKeyUsage=clientAuth\n');
  for (const d of [client, rogue, server]) await run('cp', [join(dir, 'ca.pem'), d]);

  // The shared engine's runtimes (gVisor, as infra/local/runsc.sh registers it).
  const runsc = await run('sh', ['-c', 'command -v runsc']).then(
    (r) => r.stdout.trim(),
    () => '',
  );
  await writeFile(
    join(dir, 'daemon.json'),
    JSON.stringify(
      runsc === '' ? {} : { runtimes: { runsc: { path: runsc, runtimeArgs: ['--network=host'] } } },
    ),
  );
  const bridge = await createBridge('pbt', 253);
  // The shared engine set this host's FORWARD policy to DROP; on a host of its own this engine
  // would have made the rule itself (here it runs with --iptables=false, not to touch the
  // shared engine's chains): its sandboxes may reach one another on its bridge.
  const forward = ['FORWARD', '-i', bridge, '-o', bridge, '-j', 'ACCEPT'];
  await run('iptables', ['-I', ...forward]).catch(() => undefined);
  const port = await freePort();
  const host = `tcp://127.0.0.1:${port}`;
  const engine = new PrivateEngine({
    dir,
    host,
    endpoint: { host, tlsVerify: true, certPath: client },
    bridge,
    args: [
      '--tlsverify',
      `--tlscacert=${join(server, 'ca.pem')}`,
      `--tlscert=${join(server, 'cert.pem')}`,
      `--tlskey=${join(server, 'key.pem')}`,
      `--config-file=${join(dir, 'daemon.json')}`,
    ],
  });
  await engine.start();
  return {
    host,
    certPath: client,
    rogueCertPath: rogue,
    env: { DOCKER_HOST: host, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: client },
    containers: (label) => engine.containers(label),
    copyImage: (image) => engine.copyImage(image),
    close: async () => {
      await engine.close();
      await run('iptables', ['-D', ...forward]).catch(() => undefined);
      await run('ip', ['link', 'del', bridge]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A bridge interface for a private engine, on a /24 of `10.<second>.x` that no route of this
 * host uses (engines of their own must not take the shared engine's `docker0`).
 */
export async function createBridge(prefix: string, second: number): Promise<string> {
  const routes = (await run('ip', ['-4', 'route'])).stdout;
  const free = Array.from({ length: 200 }, (_, i) => `10.${second}.${i + 20}`).filter(
    (net) => !routes.includes(`${net}.`),
  );
  const net = free[Math.floor(Math.random() * free.length)];
  if (net === undefined) throw new Error('no free /24 for the engine');
  const bridge = `${prefix}-${randomBytes(3).toString('hex')}`;
  await run('ip', ['link', 'add', bridge, 'type', 'bridge']);
  await run('ip', ['addr', 'add', `${net}.1/24`, 'dev', bridge]);
  return bridge;
}
