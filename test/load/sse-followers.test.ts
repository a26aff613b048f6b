import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scenarioScript, shell, steps } from '../support/scenarios.js';
import { type Stack, call, startStack, waitForTask } from '../support/stack.js';

// CI follows with fewer; the full count (200) runs with PATCHBAY_SSE_FOLLOWERS=200.
const FOLLOWERS = Number(process.env.PATCHBAY_SSE_FOLLOWERS ?? 60);
const TASKS = 4;
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    repos: { 'app.git': async (repo) => void (await repo.commit({ 'a.txt': 'a\n' })) },
    script: scenarioScript({
      chatty: steps([
        shell('for i in $(seq 1 5); do echo line $i; sleep 0.2; done'),
        shell('echo one > one.txt'),
        shell('for i in $(seq 1 5); do echo more $i; sleep 0.2; done'),
        shell('echo two > two.txt'),
      ]),
    }),
  });
});

afterAll(async () => {
  await stack?.close();
});

/** Reads one SSE stream to its end; returns the events in order. */
async function follow(id: string): Promise<{ seq: number; type: string }[]> {
  const res = await fetch(`${stack.url}/v1/tasks/${id}/events`, {
    headers: { accept: 'text/event-stream' },
  });
  const events: { seq: number; type: string }[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const data = /^data: (.*)$/m.exec(buffer.slice(0, end))?.[1];
      buffer = buffer.slice(end + 2);
      if (data !== undefined) events.push(JSON.parse(data));
    }
  }
  return events;
}

describe('many live followers', () => {
  it(
    `delivers every event exactly once to ${FOLLOWERS} concurrent SSE followers of running tasks`,
    { timeout: 180_000 },
    async () => {
      const ids: string[] = [];
      for (let i = 0; i < TASKS; i++) {
        const { body } = await call(stack, 'POST', '/v1/tasks', {
          repo: { url: stack.git.url('app.git') },
          prompt: 'SCENARIO:chatty',
        });
        ids.push(body.id);
      }
      const streams = await Promise.all(
        Array.from({ length: FOLLOWERS }, (_, i) => follow(ids[i % TASKS]!)),
      );
      for (const id of ids) expect((await waitForTask(stack, id)).status).toBe('succeeded');
      const logs = new Map<string, number[]>();
      for (const id of ids) {
        const { body } = await call(stack, 'GET', `/v1/tasks/${id}/events?limit=1000`);
        logs.set(
          id,
          body.events.map((e: { seq: number }) => e.seq),
        );
      }
      streams.forEach((events, i) => {
        const expected = logs.get(ids[i % TASKS]!)!;
        expect(events.map((e) => e.seq)).toEqual(expected);
        expect(events.at(-1)).toMatchObject({ type: 'status' });
      });
      expect(streams.reduce((n, s) => n + s.length, 0)).toBeGreaterThan(FOLLOWERS * 20);
    },
  );
});
