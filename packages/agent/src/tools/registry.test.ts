import { PatchbayError } from '@patchbay/core';
import { describe, expect, it } from 'vitest';
import { ToolRegistry } from './registry.js';
import { ScriptedSandbox, TEST_LIMITS, toolContext } from './test-support.js';
import { UpdatePlanArgs, updatePlanTool } from './update-plan.js';

const registry = ToolRegistry.standard(TEST_LIMITS);
const call = (name: string, args: string) => ({ name, arguments: args });

describe('ToolRegistry', () => {
  it('offers shell, apply_patch and update_plan in a fixed order', () => {
    expect(registry.definitions.map((d) => d.name)).toEqual([
      'shell',
      'apply_patch',
      'update_plan',
    ]);
    expect(ToolRegistry.standard(TEST_LIMITS).definitions).toEqual(registry.definitions);
  });

  it('answers an unknown tool, invalid JSON and a schema violation with an error the model can act on', async () => {
    const sandbox = new ScriptedSandbox();
    const context = toolContext(sandbox);
    const unknown = await registry.execute(call('read_file', '{"path":"a"}'), context);
    expect(unknown).toMatchObject({ ok: false });
    expect(unknown.output).toBe(
      'Error: there is no tool named "read_file". Available tools: shell, apply_patch, update_plan.',
    );
    const json = await registry.execute(call('shell', '{"command": "ls"'), context);
    expect(json.output).toMatch(
      /^Error: the arguments of shell are not valid JSON \(.+\)\. Send one JSON object\.$/,
    );
    const schema = await registry.execute(call('shell', '{"cmd": "ls"}'), context);
    expect(schema.output).toBe(
      'Error: invalid arguments for shell:\n- command: command must be a non-empty string (run with bash -lc) or a non-empty array of strings (argv)',
    );
    const notObject = await registry.execute(call('update_plan', '[1]'), context);
    expect(notObject.output).toMatch(/^Error: invalid arguments for update_plan:\n- arguments: /);
    expect(sandbox.calls).toHaveLength(0);
  });

  it('answers a refused workdir and a failing helper as errors, but rethrows a broken sandbox', async () => {
    const context = toolContext(new ScriptedSandbox());
    const escaped = await registry.execute(
      call('shell', '{"command":"ls","workdir":"/etc"}'),
      context,
    );
    expect(escaped).toMatchObject({ ok: false });
    expect(escaped.output).toMatch(/^Error: workdir "\/etc" is outside \/workspace/);

    const flaky = new ScriptedSandbox(() => {
      throw new Error('exec server hiccup');
    });
    const failed = await registry.execute(call('shell', '{"command":"ls"}'), toolContext(flaky));
    expect(failed.output).toBe('Error: shell failed: exec server hiccup');

    const broken = new ScriptedSandbox(() => {
      throw new PatchbayError('sandbox_error', 'the exec channel died');
    });
    await expect(
      registry.execute(call('shell', '{"command":"ls"}'), toolContext(broken)),
    ).rejects.toThrow('the exec channel died');
  });

  it('rethrows when the run was cancelled', async () => {
    const controller = new AbortController();
    const sandbox = new ScriptedSandbox(() => {
      controller.abort(new Error('cancelled'));
      return { aborted: true, exitCode: null };
    });
    const context = toolContext(sandbox, { signal: controller.signal });
    const err: unknown = await registry
      .execute(call('shell', '{"command":"sleep 100"}'), context)
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'AbortError' });
  });
});

describe('update_plan', () => {
  it('records the plan as an event', async () => {
    const context = toolContext(new ScriptedSandbox());
    const plan = [
      { step: 'read the code', status: 'completed' },
      { step: 'fix the bug', status: 'in_progress' },
      { step: 'run the tests', status: 'pending' },
    ] as const;
    const result = await registry.execute(
      call('update_plan', JSON.stringify({ explanation: 'start', plan })),
      context,
    );
    expect(result).toMatchObject({ ok: true, output: 'Plan updated' });
    expect(context.events).toEqual([{ type: 'plan', explanation: 'start', steps: plan }]);
  });

  it('allows at most one step in progress and only the three statuses', async () => {
    const two = {
      plan: [
        { step: 'a', status: 'in_progress' },
        { step: 'b', status: 'in_progress' },
      ],
    };
    expect(UpdatePlanArgs.safeParse(two).success).toBe(false);
    const context = toolContext(new ScriptedSandbox());
    const result = await registry.execute(call('update_plan', JSON.stringify(two)), context);
    expect(result.output).toBe(
      'Error: invalid arguments for update_plan:\n- plan: at most one step can be in_progress, got 2',
    );
    const badStatus = await registry.execute(
      call('update_plan', '{"plan":[{"step":"a","status":"done"}]}'),
      context,
    );
    expect(badStatus.output).toContain('plan.0.status');
    expect(context.events).toEqual([]);
    expect(UpdatePlanArgs.safeParse({ plan: [] }).success).toBe(true);
  });

  it('describes plan and explanation to the model', () => {
    const parameters = updatePlanTool.definition.parameters;
    expect(parameters['required']).toEqual(['plan']);
    expect(JSON.stringify(parameters)).toContain('"enum":["pending","in_progress","completed"]');
  });
});
