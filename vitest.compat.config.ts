import { defineConfig } from 'vitest/config';

/**
 * `npm run test:compat`: Patchbay against a real OpenAI-compatible server, llama.cpp's
 * llama-server (infra/local/compat.sh builds it once, ~12 minutes on 2 cores, and caches it).
 */
export default defineConfig({
  test: {
    include: ['test/compat/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    maxWorkers: 1,
  },
});
