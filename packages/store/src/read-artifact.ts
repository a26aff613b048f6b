import type { ArtifactStore } from './types.js';

/** An artifact's bytes, or null when it does not exist. */
export async function readArtifact(
  artifacts: ArtifactStore,
  taskId: string,
  name: string,
): Promise<Buffer | null> {
  const found = await artifacts.get(taskId, name);
  if (found === null) return null;
  const chunks: Buffer[] = [];
  for await (const chunk of found.body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
