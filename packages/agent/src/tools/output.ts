/**
 * Command output as head + tail with the size of the gap between them, so it can be cut again
 * (for the model, for the event log) while the marker still states exactly how much is missing.
 */
export interface ClippedOutput {
  head: Buffer;
  tail: Buffer;
  /** Bytes of the original output between `head` and `tail`. */
  omitted: number;
}

/** What {@link renderClipped} produced. */
export interface RenderedOutput {
  text: string;
  /** Bytes of the original output the text leaves out (0 when it is whole). */
  omittedBytes: number;
  /** Size of the original output in bytes. */
  totalBytes: number;
}

/**
 * The clipped form of a sandbox command's output.
 *
 * The sandbox keeps the first `maxOutputBytes / 2` (rounded down) bytes and the last ones when
 * it drops anything (docker/sandbox/execd: `head_cap = max_output / 2`), so with `droppedBytes`
 * set the gap lies exactly at that offset. Without the cap it was given, the gap is put in the
 * middle, which is where it is to within a few bytes.
 */
export function clipExecOutput(
  output: Buffer,
  droppedBytes: number,
  maxOutputBytes?: number,
): ClippedOutput {
  if (droppedBytes <= 0) return { head: output, tail: Buffer.alloc(0), omitted: 0 };
  const split = Math.min(
    output.length,
    maxOutputBytes === undefined ? Math.floor(output.length / 2) : Math.floor(maxOutputBytes / 2),
  );
  return { head: output.subarray(0, split), tail: output.subarray(split), omitted: droppedBytes };
}

/** A whole text as a {@link ClippedOutput}. */
export function clipText(text: string): ClippedOutput {
  return { head: Buffer.from(text, 'utf8'), tail: Buffer.alloc(0), omitted: 0 };
}

/**
 * Renders `output` within `limit` bytes of kept output: the first and last `limit / 2` bytes,
 * cut at a line break when one is close and never inside a UTF-8 character, with one marker in
 * the middle stating how many bytes were left out of how many.
 */
export function renderClipped(output: ClippedOutput, limit: number): RenderedOutput {
  const { head, tail } = output;
  const totalBytes = head.length + output.omitted + tail.length;
  if (head.length + tail.length <= limit) {
    if (output.omitted === 0)
      return { text: decode(Buffer.concat([head, tail])), omittedBytes: 0, totalBytes };
    // Only the sandbox's own cut: mark it where it is.
    const headEnd = charBoundaryBefore(head, head.length);
    const tailStart = charBoundaryAfter(tail, 0);
    const omittedBytes = output.omitted + (head.length - headEnd) + tailStart;
    return {
      text: join(head.subarray(0, headEnd), omittedBytes, totalBytes, tail.subarray(tailStart)),
      omittedBytes,
      totalBytes,
    };
  }

  // Treat head + tail as one buffer with a hole; keep its first and last `limit / 2` bytes.
  const whole = Buffer.concat([head, tail]);
  const half = Math.floor(limit / 2);
  const keepHead = Math.min(half, head.length + tail.length);
  const keepTail = Math.min(limit - keepHead, whole.length - keepHead);
  let headEnd = snapBack(whole, keepHead);
  let tailStart = snapForward(whole, whole.length - keepTail);
  // The kept head must not run into the sandbox's gap from the wrong side, nor the tail: when
  // one part is shorter than half the limit, the other may take the rest (keepTail above).
  if (output.omitted > 0) {
    headEnd = Math.min(headEnd, head.length);
    tailStart = Math.max(tailStart, head.length);
  }
  const omittedBytes = totalBytes - headEnd - (whole.length - tailStart);
  return {
    text: join(whole.subarray(0, headEnd), omittedBytes, totalBytes, whole.subarray(tailStart)),
    omittedBytes,
    totalBytes,
  };
}

/** The marker put where output was left out; tests and the system prompt rely on its wording. */
export function omissionMarker(omittedBytes: number, totalBytes: number): string {
  return `[… ${omittedBytes} bytes of ${totalBytes} omitted …]`;
}

function join(head: Buffer, omittedBytes: number, totalBytes: number, tail: Buffer): string {
  const before = decode(head);
  const after = decode(tail);
  // The marker always stands on a line of its own; these line breaks are not output.
  return `${before}${before === '' ? '' : '\n'}${omissionMarker(omittedBytes, totalBytes)}${after === '' ? '' : '\n'}${after}`;
}

function decode(buf: Buffer): string {
  return buf.toString('utf8');
}

/** How far back from a cut a line break may be and still be preferred to cutting mid-line. */
const LINE_SNAP = 256;

/**
 * End of a kept head at or before `at`: at a line break when one is near (the break itself is
 * left out, the marker's line supplies it), else at a character boundary.
 */
function snapBack(buf: Buffer, at: number): number {
  if (at >= buf.length) return buf.length;
  const newline = buf.lastIndexOf(0x0a, at);
  if (newline > 0 && at - newline <= LINE_SNAP) return newline;
  return charBoundaryBefore(buf, at);
}

/** Start of a kept tail at or after `at`: just after a line break when one is near, else at a character boundary. */
function snapForward(buf: Buffer, at: number): number {
  if (at <= 0) return 0;
  const newline = buf.indexOf(0x0a, at - 1);
  if (newline >= 0 && newline + 1 - at <= LINE_SNAP) return newline + 1;
  return charBoundaryAfter(buf, at);
}

/**
 * The largest offset ≤ `end` that does not split a UTF-8 character, judged from the bytes before
 * `end` only: a head the sandbox cut may end in the first bytes of a character.
 */
function charBoundaryBefore(buf: Buffer, end: number): number {
  let lead = end - 1;
  while (lead >= 0 && end - lead < 4 && isContinuation(buf[lead])) lead--;
  const byte = buf[lead];
  if (lead < 0 || byte === undefined) return end;
  const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
  return end - lead < length ? lead : end;
}

/** The smallest offset ≥ `at` that does not split a UTF-8 character (skips continuation bytes). */
function charBoundaryAfter(buf: Buffer, at: number): number {
  let i = Math.max(at, 0);
  for (let steps = 0; steps < 3 && i < buf.length && isContinuation(buf[i]); steps++) i++;
  return i;
}

function isContinuation(byte: number | undefined): boolean {
  return byte !== undefined && (byte & 0xc0) === 0x80;
}
