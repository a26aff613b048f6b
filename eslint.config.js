import js from '@eslint/js';
import { importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = import.meta.dirname;
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
/** The npm workspaces (apps/*, packages/*), each with the package.json its imports answer to. */
const workspaces = manifest.workspaces.flatMap((pattern) => {
  const parent = pattern.replace('/*', '');
  return readdirSync(join(root, parent), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => `${parent}/${d.name}`);
});

/** Packages are used through their exports only: no reaching into another package's files. */
const packagePatterns = [
  {
    group: ['@patchbay/*/*', '!@patchbay/*/testing'],
    message: 'Import a package by its name; add an export instead.',
  },
  {
    group: ['**/packages/*/src/**', '**/apps/*/src/**', '../../*/src/**'],
    message: 'Import another package by its name.',
  },
];
/** An engine's client belongs to its provider's folder; everything else sees `Sandbox`. */
const engineClients = [
  {
    name: 'dockerode',
    message: 'Only packages/sandbox/src/docker/ talks to the Docker engine; use the Sandbox types.',
  },
];
/** What of the sandbox package names an engine: for its own tests and the engine's folder. */
const engineExports = [
  'DockerSandboxProvider',
  'createDockerClient',
  'DockerSandbox',
  'DockerSandboxProviderOptions',
];

export default tseslint.config(
  // Benchmark fixtures are other projects' code, checked by nothing of ours.
  { ignores: ['**/node_modules/**', '**/dist/**', 'coverage/**', 'bench/fixtures/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    plugins: { 'import-x': importX },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/only-throw-error': 'error',
      // fastify plugins and handlers are async by contract, awaiting or not.
      '@typescript-eslint/require-await': 'off',
      'import-x/no-cycle': 'error',
      // Each workspace declares what it imports (its own package.json, no development
      // dependencies); its tests may also use the root's development dependencies (below).
      'import-x/no-extraneous-dependencies': [
        'error',
        { devDependencies: false, includeTypes: true },
      ],
      'no-restricted-imports': ['error', { patterns: packagePatterns }],
    },
  },
  // Engine code stays in its provider's folder; apps wire providers by config, never by engine.
  {
    files: ['packages/**/*.ts', 'apps/**/*.ts'],
    ignores: ['packages/sandbox/src/docker/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: packagePatterns, paths: engineClients }],
    },
  },
  {
    files: ['apps/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: packagePatterns,
          paths: [
            ...engineClients,
            {
              name: '@patchbay/sandbox',
              importNames: engineExports,
              message: 'Apps choose a provider through createSandboxProvider, by config.',
            },
          ],
        },
      ],
    },
  },
  // The web page's build config: resolved by Vite, not by the import plugin's Node resolver.
  {
    files: ['apps/web/vite.config.ts'],
    rules: {
      'import-x/no-cycle': 'off',
      'import-x/no-extraneous-dependencies': [
        'error',
        { devDependencies: true, packageDir: [root, join(root, 'apps/web')] },
      ],
    },
  },
  // Plain JavaScript (this file) has no types to check.
  { files: ['*.js'], ...tseslint.configs.disableTypeChecked },
  // Tests of a workspace: its own dependencies plus the root's (vitest and the like).
  ...workspaces.map((dir) => ({
    files: [
      `${dir}/**/*.test.ts`,
      `${dir}/**/*test-support.ts`,
      `${dir}/**/testing/**`,
      `${dir}/**/testing.ts`,
    ],
    rules: {
      'import-x/no-extraneous-dependencies': [
        'error',
        { devDependencies: true, includeTypes: true, packageDir: [root, join(root, dir)] },
      ],
    },
  })),
  // The end-to-end suite, benchmarks, provisioning and config files: the root package.json.
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'infra/**/*.ts', '*.config.*', '*.js'],
    rules: {
      'import-x/no-extraneous-dependencies': [
        'error',
        { devDependencies: true, includeTypes: true, packageDir: root },
      ],
    },
  },
  {
    files: ['**/*.test.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      // Tests read JSON bodies; typing every response would only restate the schemas.
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
);
