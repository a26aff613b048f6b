import { describe, expect, it } from 'vitest';
import { parseSse } from './sse.js';

async function collect(chunks: string[]) {
  async function* body() {
    for (const chunk of chunks) yield new TextEncoder().encode(chunk);
  }
  const out = [];
  for await (const message of parseSse(body())) out.push(message);
  return out;
}

describe('parseSse', () => {
  it('parses ids, event names and multi-line data, skipping comments and retry', async () => {
    expect(
      await collect([
        'retry: 2000\n\n: keep-alive\n\nid: 1\nevent: status\ndata: {"a":1}\n\n',
        'data: x\ndata: y\n\n',
      ]),
    ).toEqual([
      { id: '1', event: 'status', data: '{"a":1}' },
      { id: '1', event: 'message', data: 'x\ny' },
    ]);
  });

  it('reassembles messages and CRLF line ends split across chunks', async () => {
    expect(await collect(['id: 7\r', '\nda', 'ta: {"seq":7}\r\n', '\r\n'])).toEqual([
      { id: '7', event: 'message', data: '{"seq":7}' },
    ]);
  });
});
