// Paths the JS tests share (test/helpers): the repo root, the built CommonJS entry the tests load,
// and the real-data folder ../shared/data next to the repo.
import * as path from 'node:path';

export const repoRoot = path.resolve(__dirname, '..', '..');
export const distCjs = path.join(repoRoot, 'dist', 'cjs', 'index.js');
export const distEsm = path.join(repoRoot, 'dist', 'esm', 'index.mjs');
export const dataRoot = path.resolve(repoRoot, '..', 'shared', 'data');
