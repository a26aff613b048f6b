/**
 * A minimal POSIX (pax) tar encoder: headers only, the caller streams the contents.
 *
 * Why not tar-stream: it takes names as JavaScript strings, so a path that is not valid UTF-8
 * (git allows any bytes but NUL and `/` in a name) would be altered on the way into the
 * sandbox. Here names are bytes from end to end; a name or link target that does not fit the
 * ustar fields, or is not ASCII, goes into a pax extended header (`path`, `linkpath`), with
 * `hdrcharset=BINARY` when it is not UTF-8 so GNU tar and Go's archive/tar keep the bytes.
 */

const BLOCK = 512;

export type TarEntryType = 'file' | 'directory' | 'symlink';

export interface TarEntry {
  /** Path inside the archive, as raw bytes; directories without a trailing slash. */
  name: Buffer;
  type: TarEntryType;
  /** Permission bits, e.g. 0o644. */
  mode: number;
  /** Content size; 0 for directories and symlinks. */
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  uid: number;
  gid: number;
  /** Symlink target, raw bytes. */
  linkname?: Buffer;
}

const TYPEFLAG: Record<TarEntryType | 'pax', string> = {
  file: '0',
  symlink: '2',
  directory: '5',
  pax: 'x',
};

/** Largest size an 11-digit octal field holds; bigger files need a pax `size` record. */
const MAX_OCTAL_SIZE = 0o77777777777;

function octal(value: number, width: number): Buffer {
  // width includes the terminating NUL.
  return Buffer.from(`${value.toString(8).padStart(width - 1, '0')}\0`, 'ascii');
}

function isPlainAscii(bytes: Buffer): boolean {
  for (const byte of bytes) if (byte < 0x20 || byte > 0x7e) return false;
  return true;
}

function isUtf8(bytes: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** One pax record, `"<len> <key>=<value>\n"`, where len counts the whole record itself. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = 1 + Buffer.byteLength(key) + 1 + value.length + 1;
  let length = body + String(body).length;
  if (String(length).length !== String(body).length) length += 1;
  return Buffer.concat([Buffer.from(`${length} ${key}=`, 'ascii'), value, Buffer.from('\n')]);
}

function ustarHeader(
  name: Buffer,
  typeflag: string,
  mode: number,
  size: number,
  mtime: number,
  uid: number,
  gid: number,
  linkname: Buffer,
): Buffer {
  const header = Buffer.alloc(BLOCK);
  name.copy(header, 0, 0, Math.min(name.length, 100));
  octal(mode & 0o7777, 8).copy(header, 100);
  octal(uid, 8).copy(header, 108);
  octal(gid, 8).copy(header, 116);
  octal(Math.min(size, MAX_OCTAL_SIZE), 12).copy(header, 124);
  octal(Math.max(0, Math.floor(mtime)), 12).copy(header, 136);
  header.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  header.write(typeflag, 156, 'ascii');
  linkname.copy(header, 157, 0, Math.min(linkname.length, 100));
  header.write('ustar\0', 257, 'ascii');
  header.write('00', 263, 'ascii');
  let sum = 0;
  for (const byte of header) sum += byte;
  Buffer.from(`${sum.toString(8).padStart(6, '0')}\0 `, 'ascii').copy(header, 148);
  return header;
}

/** Zero bytes that pad `size` bytes of content to a whole block. */
export function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rest);
}

/** Two zero blocks: the end of the archive. */
export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);

/**
 * The header block(s) of one entry: a pax extended header when a field does not fit ustar,
 * then the ustar header. The entry's content (size bytes) and {@link padding} follow.
 */
export function encodeHeader(entry: TarEntry): Buffer {
  const name =
    entry.type === 'directory' ? Buffer.concat([entry.name, Buffer.from('/')]) : entry.name;
  const linkname = entry.linkname ?? Buffer.alloc(0);
  const records: Buffer[] = [];
  const needsPath = name.length > 100 || !isPlainAscii(name);
  const needsLink = linkname.length > 100 || !isPlainAscii(linkname);
  if ((needsPath && !isUtf8(name)) || (needsLink && !isUtf8(linkname))) {
    records.push(paxRecord('hdrcharset', Buffer.from('BINARY')));
  }
  if (needsPath) records.push(paxRecord('path', name));
  if (needsLink) records.push(paxRecord('linkpath', linkname));
  if (entry.size > MAX_OCTAL_SIZE) records.push(paxRecord('size', Buffer.from(String(entry.size))));
  const main = ustarHeader(
    name,
    TYPEFLAG[entry.type],
    entry.mode,
    entry.size,
    entry.mtime,
    entry.uid,
    entry.gid,
    linkname,
  );
  if (records.length === 0) return main;
  const pax = Buffer.concat(records);
  // The pax header's own name is informational; keep it ASCII and short.
  const paxName = Buffer.from('./PaxHeaders/entry');
  return Buffer.concat([
    ustarHeader(paxName, TYPEFLAG.pax, 0o644, pax.length, entry.mtime, 0, 0, Buffer.alloc(0)),
    pax,
    padding(pax.length),
    main,
  ]);
}
