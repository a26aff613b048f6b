import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'apps/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    // Its own command (npm run test:compat): it needs llama-server, a 12-minute build.
    exclude: ['**/node_modules/**', 'test/compat/**'],
    // Redis and Docker must answer before anything runs: the suite fails loudly, never skips.
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: more files at once only makes container tests contend.
    maxWorkers: 2,
  },
});
