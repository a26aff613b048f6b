import { z } from 'zod';

/**
 * The JSON Schema of a tool's arguments, generated from its zod schema so the two cannot drift.
 * Refinements (such as "at most one step in progress") are not expressible in JSON Schema; the
 * zod check still enforces them and its message goes back to the model.
 */
export function toolParameters(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _ignored, ...parameters } = z.toJSONSchema(schema, {
    io: 'input',
    unrepresentable: 'any',
  });
  return parameters;
}

/** Zod issues as short lines the model can act on: `path: message`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const where = issue.path.length === 0 ? 'arguments' : issue.path.map(String).join('.');
      return `- ${where}: ${issue.message}`;
    })
    .join('\n');
}
