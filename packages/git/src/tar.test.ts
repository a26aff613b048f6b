import { spawn } from 'node:child_process';
import { lstat, mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { END_OF_ARCHIVE, encodeHeader, padding, type TarEntry } from './tar.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'patchbay-tar-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const base = { mtime: 1_700_000_000, uid: 0, gid: 0 };

function archive(entries: { entry: TarEntry; content?: Buffer }[]): Buffer {
  return Buffer.concat([
    ...entries.flatMap(({ entry, content }) => [
      encodeHeader(entry),
      content ?? Buffer.alloc(0),
      padding(content?.length ?? 0),
    ]),
    END_OF_ARCHIVE,
  ]);
}

/** Extracts with GNU tar, the way a sandbox would. */
async function extract(tar: Buffer): Promise<void> {
  const child = spawn('tar', ['-x', '--no-same-owner', '-f', '-', '-C', dir], {
    env: { PATH: process.env.PATH, LC_ALL: 'C' },
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(tar);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  // GNU tar does not know pax `hdrcharset` (libarchive does); it keeps the raw bytes either way.
  expect(
    stderr.replace(/^tar: Ignoring unknown extended header keyword 'hdrcharset'\n/gm, ''),
  ).toBe('');
  expect(code).toBe(0);
}

const file = (name: Buffer | string, content: Buffer, mode = 0o644) => ({
  entry: {
    ...base,
    name: Buffer.isBuffer(name) ? name : Buffer.from(name),
    type: 'file' as const,
    mode,
    size: content.length,
  },
  content,
});

describe('tar encoder', () => {
  it('writes files, modes, directories and symlinks GNU tar reads back exactly', async () => {
    const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 256));
    await extract(
      archive([
        { entry: { ...base, name: Buffer.from('d'), type: 'directory', mode: 0o755, size: 0 } },
        file('d/data.bin', bytes),
        file('d/run.sh', Buffer.from('#!/bin/sh\n'), 0o755),
        file('empty', Buffer.alloc(0)),
        {
          entry: {
            ...base,
            name: Buffer.from('d/link'),
            type: 'symlink',
            mode: 0o777,
            size: 0,
            linkname: Buffer.from('../../outside'),
          },
        },
      ]),
    );
    expect(await readFile(join(dir, 'd/data.bin'))).toEqual(bytes);
    expect((await lstat(join(dir, 'd/run.sh'))).mode & 0o777).toBe(0o755);
    expect((await lstat(join(dir, 'd/data.bin'))).mode & 0o777).toBe(0o644);
    expect((await lstat(join(dir, 'empty'))).size).toBe(0);
    expect(await readlink(join(dir, 'd/link'))).toBe('../../outside');
    expect((await lstat(join(dir, 'd/data.bin'))).mtimeMs).toBe(1_700_000_000_000);
  });

  it('carries long, non-ASCII, newline and non-UTF-8 names byte for byte', async () => {
    const long = `${'a'.repeat(120)}/${'b'.repeat(150)}.txt`;
    const latin1 = Buffer.from([0x66, 0xe9, 0x65, 0x2e, 0x74, 0x78, 0x74]); // "f\xe9e.txt"
    const longTarget = Buffer.from('t'.repeat(300));
    await extract(
      archive([
        {
          entry: {
            ...base,
            name: Buffer.from('a'.repeat(120)),
            type: 'directory',
            mode: 0o755,
            size: 0,
          },
        },
        file(long, Buffer.from('long')),
        file('ünïcödé.txt', Buffer.from('utf8')),
        file('new\nline.txt', Buffer.from('newline')),
        file(latin1, Buffer.from('latin1')),
        {
          entry: {
            ...base,
            name: Buffer.from('longlink'),
            type: 'symlink',
            mode: 0o777,
            size: 0,
            linkname: longTarget,
          },
        },
      ]),
    );
    expect(await readFile(join(dir, long), 'utf8')).toBe('long');
    expect(await readFile(join(dir, 'ünïcödé.txt'), 'utf8')).toBe('utf8');
    expect(await readFile(join(dir, 'new\nline.txt'), 'utf8')).toBe('newline');
    const names = await readdir(dir, { encoding: 'buffer' });
    expect(names.some((n) => n.equals(latin1))).toBe(true);
    expect(await readFile(Buffer.concat([Buffer.from(`${dir}/`), latin1]), 'utf8')).toBe('latin1');
    expect(await readlink(join(dir, 'longlink'))).toBe(longTarget.toString());
  });

  it('pads content to whole blocks', () => {
    expect(padding(0).length).toBe(0);
    expect(padding(1).length).toBe(511);
    expect(padding(512).length).toBe(0);
    expect(encodeHeader(file('x', Buffer.alloc(3)).entry).length).toBe(512);
  });
});
