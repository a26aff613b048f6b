/** The value a JSON text holds, or undefined when it is not JSON (a schema then says why). */
export function safeJson(raw: string | undefined): unknown {
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return undefined;
  }
}
