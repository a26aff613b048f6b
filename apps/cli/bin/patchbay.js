#!/usr/bin/env node
// Runs the TypeScript CLI in place through tsx's loader, in this process (no second node startup,
// no build step). The repository's tsconfig is named explicitly: tsx would otherwise read one from
// the working directory, which is whatever directory the user is patching.
import { URL, fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../../../tsconfig.json', import.meta.url)) });
await import('../src/main.ts');
