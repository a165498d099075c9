// Test driver (`npm test`): each test/*.test.ts uvu file in its own Node process (tsx; a crash stays
// in one file and counts as a failure), then the C++ core tests (build-cmake/vlk_core_tests) if built.
// Ends with one line `N passed, N failed[, N skipped]`; exits non-zero on a failure or when nothing ran.
// Usage: node test/run.mjs [substring ...]   (only files whose name contains one; 'native': the C++ tests)
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const testDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(testDir, '..');
// A hung file must not hang CI; the whole run is budgeted at about 4 minutes.
const FILE_TIMEOUT_MS = Number(process.env.VLK_TEST_TIMEOUT_MS || 240_000);
const coreTests = process.env.VLK_CORE_TESTS || join(repoRoot, 'build-cmake', 'vlk_core_tests');

const filters = process.argv.slice(2);
// Light, quick files first; timing-sensitive async checks run on an otherwise idle machine anyway
// because files run one at a time.
const ORDER = ['sources', 'errors', 'search', 'isa', 'async', 'data'];
const rank = (f) => {
  const i = ORDER.indexOf(f.replace(/\.test\.ts$/, ''));
  return i < 0 ? ORDER.length : i;
};
const files = readdirSync(testDir)
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));

const stripAnsi = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');

/** Runs a command, streaming its output; resolves with its exit status and captured stdout. */
function runStreaming(cmd, args, env) {
  return new Promise((resolvePromise) => {
    let out = '';
    let timedOut = false;
    const child = spawn(cmd, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, FILE_TIMEOUT_MS);
    child.stdout.on('data', (d) => {
      out += d;
      process.stdout.write(d);
    });
    child.stderr.on('data', (d) => process.stderr.write(d));
    child.on('error', (err) => {
      clearTimeout(timer);
      resolvePromise({ code: null, signal: null, out, timedOut, spawnError: err });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, out, timedOut });
    });
  });
}

function lastMatch(text, re) {
  let m;
  let last = null;
  const g = new RegExp(re.source, 'g');
  while ((m = g.exec(text)) !== null) last = m;
  return last;
}

// The suites test the built package (dist/, build/Release): say so when it is older than its sources.
function newest(dir, re) {
  let t = 0;
  if (!existsSync(dir)) return t;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(full, re));
    else if (re.test(e.name)) t = Math.max(t, statSync(full).mtimeMs);
  }
  return t;
}
for (const [built, srcDir, re, fix] of [
  ['dist/cjs/index.js', 'lib', /\.ts$/, 'npm run build:ts'],
  ['build/Release/vlkernels.node', 'native', /\.(cpp|hpp|h)$/, 'npm run build:native'],
]) {
  const file = join(repoRoot, built);
  if (!existsSync(file)) process.stdout.write(`warning: ${built} is missing (${fix})\n`);
  else if (newest(join(repoRoot, srcDir), re) > statSync(file).mtimeMs) {
    process.stdout.write(`warning: ${built} is older than ${srcDir}/ (${fix})\n`);
  }
}
// A CUDA build next to the CPU one is what the package loads (unless VLK_CUDA=0): say so.
const cudaBuild = join(repoRoot, 'build', 'Release', 'vlkernels_cuda.node');
if (existsSync(cudaBuild) && process.env.VLK_CUDA !== '0') {
  const stale = newest(join(repoRoot, 'native'), /\.(cpp|hpp|h|cu|cuh)$/) > statSync(cudaBuild).mtimeMs;
  process.stdout.write(
    `note: the tests load the CUDA build build/Release/vlkernels_cuda.node${stale ? ', which is older than native/ (npm run build:cuda)' : ''}; VLK_CUDA=0 tests the CPU build\n`,
  );
}

let passed = 0;
let failed = 0;
let skipped = 0;
const summary = [];

const env = { ...process.env };
if (process.stdout.isTTY && env.FORCE_COLOR === undefined) env.FORCE_COLOR = '1';

for (const file of files) {
  const rel = relative(repoRoot, join(testDir, file));
  process.stdout.write(`\n=== ${rel}\n`);
  const r = await runStreaming(process.execPath, ['--expose-gc', '--import', 'tsx', rel], env);
  const text = stripAnsi(r.out);
  const total = lastMatch(text, /Total:\s+(\d+)/);
  const pass = lastMatch(text, /Passed:\s+(\d+)/);
  const skip = lastMatch(text, /Skipped:\s+(\d+)/);
  let p = 0;
  let f = 0;
  let s = 0;
  let note = '';
  if (total && pass) {
    p = Number(pass[1]);
    f = Number(total[1]) - p;
    s = skip ? Number(skip[1]) : 0;
  } else {
    // No summary (the process died): count the per-test marks uvu printed before that.
    p = (text.match(/• /g) || []).length;
    f = (text.match(/✘ /g) || []).length;
  }
  if (r.timedOut) note = `killed after ${FILE_TIMEOUT_MS / 1000} s`;
  else if (r.spawnError) note = `could not start: ${r.spawnError.message}`;
  else if (r.signal) note = `killed by ${r.signal}`;
  else if (r.code !== 0) note = `exited with status ${r.code}`;
  else if (!total) note = 'printed no uvu summary';
  // A crash or a timeout counts as one more failure (the test that was running); a non-zero exit
  // without a counted failure fails the file too.
  if (note && (!total || f === 0)) f += 1;
  passed += p;
  failed += f;
  skipped += s;
  summary.push(`${rel}: ${p} passed, ${f} failed${s ? `, ${s} skipped` : ''}${note ? ` (${note})` : ''}`);
}

if (filters.length === 0 || filters.includes('native')) {
  if (existsSync(coreTests)) {
    const rel = relative(repoRoot, coreTests);
    process.stdout.write(`\n=== ${rel}\n`);
    const r = await runStreaming(coreTests, [], process.env);
    const m = lastMatch(stripAnsi(r.out), /(\d+) passed, (\d+) failed/);
    let p = 0;
    let f = 0;
    let note = '';
    if (m) {
      p = Number(m[1]);
      f = Number(m[2]);
    }
    if (r.timedOut) note = `killed after ${FILE_TIMEOUT_MS / 1000} s`;
    else if (r.spawnError) note = `could not start: ${r.spawnError.message}`;
    else if (r.signal) note = `killed by ${r.signal}`;
    else if (r.code !== 0) note = `exited with status ${r.code}`;
    else if (!m) note = 'printed no "N passed, N failed" line';
    if (note && f === 0) f = 1;
    passed += p;
    failed += f;
    summary.push(`${rel}: ${p} passed, ${f} failed${note ? ` (${note})` : ''}`);
  } else {
    summary.push(`C++ core tests: ${relative(repoRoot, coreTests)} not built (npm run build:cmake builds it), not run`);
  }
}

process.stdout.write(`\n${summary.join('\n')}\n`);
if (passed + failed === 0) {
  process.stdout.write('nothing ran\n');
  failed = 1;
}
process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exitCode = failed > 0 ? 1 : 0;
