// The CUDA backend's plumbing (test/cuda.test.ts): info().cuda explains itself, `device` and
// `precision` are validated with typed errors, 'cpu' and 'auto' give the default results, 'cuda'
// without a usable GPU is ERR_VLK_NO_DEVICE naming the reason, and the loader prefers a CUDA build
// (build/Release/vlkernels_cuda.node or @vlkernels/<platform>-<arch>-cuda), falling back to the CPU
// build with the reason when it cannot load or VLK_CUDA=0. A last suite runs only where
// info().cuda.usable: device 'cuda' equals the CPU (ids and scores) and bf16 recall@10 >= 0.95.
// Nothing here depends on whether a CUDA build is present.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { binding, info, search, searchSync, VlkError } from './helpers/lib';
import { gaussianMatrix } from './helpers/random';
import { assertSameResult } from './helpers/compare';
import { runNode } from './helpers/child';
import { repoRoot } from './helpers/paths';

type Metric = 'ip' | 'cosine' | 'l2';
const METRICS: Metric[] = ['ip', 'cosine', 'l2'];
const cuda = info().cuda;

function expectError(fn: () => unknown, code: string, patterns: RegExp[], what: string): VlkError {
  try {
    fn();
  } catch (err: any) {
    assert.ok(err instanceof VlkError, `${what}: a VlkError, got ${err?.constructor?.name}: ${err?.message}`);
    assert.is(err.code, code, `${what}: code (message: ${err.message})`);
    for (const re of patterns) assert.match(err.message, re, `${what}: "${err.message}" should match ${re}`);
    return err;
  }
  throw new Error(`${what}: expected ${code}, nothing was thrown`);
}

async function expectRejection(p: Promise<unknown>, code: string, patterns: RegExp[], what: string): Promise<void> {
  const err: any = await p.then(
    () => undefined,
    (e) => e,
  );
  assert.ok(err !== undefined, `${what}: should reject with ${code}`);
  assert.ok(err instanceof VlkError, `${what}: a VlkError, got ${err?.constructor?.name}: ${err?.message}`);
  assert.is(err.code, code, `${what}: code (message: ${err.message})`);
  for (const re of patterns) assert.match(err.message, re, `${what}: "${err.message}" should match ${re}`);
}

function escapeRegExp(s: string): RegExp {
  return new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
}

/** n x d gaussian gallery where every 5th row repeats row 1 (ties). */
function galleryWithTies(n: number, d: number, seed: number): Float32Array {
  const g = gaussianMatrix(n, d, seed);
  if (n > 1) for (let r = 5; r < n; r += 5) g.copyWithin(r * d, d, 2 * d);
  return g;
}

// ---------------------------------------------------------------------------------------------
const Info = suite('info().cuda');

Info('says whether CUDA is built and usable, and why not', () => {
  assert.type(cuda.built, 'boolean');
  assert.type(cuda.usable, 'boolean');
  assert.type(cuda.reason, 'string');
  assert.type(cuda.deviceCount, 'number');
  if (!cuda.built) assert.not.ok(cuda.usable, 'a build without CUDA is never usable');
  if (cuda.usable) {
    assert.is(cuda.reason, '', 'no reason when usable');
    assert.ok(cuda.device, 'a usable build names its device');
    assert.match(cuda.device!.computeCapability, /^\d+\.\d+$/);
    assert.match(cuda.device!.driverVersion, /^\d+\.\d+$/);
    assert.ok(cuda.device!.memoryBytes > 0, 'memoryBytes');
    assert.ok(cuda.deviceCount >= 1, 'deviceCount');
  } else {
    assert.ok(cuda.reason.length > 0, 'an unusable backend says why');
  }
  if (!cuda.built && !cuda.addonPath) {
    assert.match(cuda.reason, /built without CUDA/);
    assert.match(cuda.reason, /README/);
    assert.is(cuda.deviceCount, 0);
    assert.is(cuda.device, undefined);
  }
  console.log(
    `  cuda: built ${cuda.built}, usable ${cuda.usable}${cuda.device ? `, ${cuda.device.name}` : ''}` +
      `${cuda.reason ? ` (${cuda.reason})` : ''}${cuda.addonPath ? `, CUDA build ${cuda.addonPath}` : ''}`,
  );
});

Info('is the same object shape on every call (probed once)', () => {
  assert.equal(info().cuda, cuda);
});

Info.run();

// ---------------------------------------------------------------------------------------------
const Options = suite('device and precision options');

const D = 16;
const Q = gaussianMatrix(5, D, 1);
const G = galleryWithTies(300, D, 2);

Options("'cpu' and 'auto' give the default results (sync and async, every metric)", async () => {
  for (const metric of METRICS) {
    const base = searchSync(Q, G, { k: 10, dim: D, metric });
    for (const device of ['cpu', 'auto'] as const) {
      assertSameResult(searchSync(Q, G, { k: 10, dim: D, metric, device }), base, `${metric} ${device} sync`);
      assertSameResult(await search(Q, G, { k: 10, dim: D, metric, device }), base, `${metric} ${device} async`);
      assertSameResult(
        searchSync(Q, G, { k: 10, dim: D, metric, device, precision: 'exact' }),
        base,
        `${metric} ${device} precision exact`,
      );
    }
  }
});

Options("'auto' with filters runs on the CPU and equals 'cpu'", async () => {
  const exclude = new Int32Array([1, -1, 5, 0, 299]);
  const allow = new Uint8Array(300).map((_, i) => (i % 3 === 0 ? 0 : 1));
  const base = searchSync(Q, G, { k: 7, dim: D, exclude, allow });
  assertSameResult(searchSync(Q, G, { k: 7, dim: D, exclude, allow, device: 'auto' }), base, 'auto sync');
  assertSameResult(await search(Q, G, { k: 7, dim: D, exclude, allow, device: 'auto' }), base, 'auto async');
});

Options("'cuda' without a usable device is ERR_VLK_NO_DEVICE naming the reason", async () => {
  if (cuda.usable) {
    console.log('  skipped: CUDA is usable here (the GPU suite below covers device: cuda)');
    return;
  }
  const patterns = [/cuda/, escapeRegExp(cuda.reason)];
  expectError(() => searchSync(Q, G, { k: 3, dim: D, device: 'cuda' }), 'ERR_VLK_NO_DEVICE', patterns, 'searchSync');
  expectError(
    () => searchSync(Q, G, { k: 3, dim: D, device: 'cuda', precision: 'bf16' }),
    'ERR_VLK_NO_DEVICE',
    patterns,
    'searchSync bf16',
  );
  let promise: Promise<unknown>;
  try {
    promise = search(Q, G, { k: 3, dim: D, device: 'cuda' });
  } catch (err: any) {
    throw new Error(`search threw synchronously instead of rejecting: ${err?.code} ${err?.message}`);
  }
  await expectRejection(promise, 'ERR_VLK_NO_DEVICE', patterns, 'search');
  // The binding itself, without lib in front.
  try {
    binding.searchSync({ data: Q, rows: 5, cols: D }, { data: G, rows: 300, cols: D }, { k: 3, metric: 'ip', device: 'cuda' });
    assert.unreachable('binding should throw');
  } catch (err: any) {
    assert.is(err.code, 'ERR_VLK_NO_DEVICE', err.message);
    assert.match(err.message, escapeRegExp(cuda.reason));
  }
});

Options("'cuda' with a filter: equal to the CPU, or ERR_VLK_INVALID_ARG / ERR_VLK_NO_DEVICE", () => {
  const exclude = new Int32Array([1, -1, 5, 0, 299]);
  try {
    const r = searchSync(Q, G, { k: 7, dim: D, exclude, device: 'cuda' });
    assertSameResult(r, searchSync(Q, G, { k: 7, dim: D, exclude }), 'cuda with exclude');
  } catch (err: any) {
    assert.ok(err instanceof VlkError, String(err));
    if (cuda.usable) {
      assert.is(err.code, 'ERR_VLK_INVALID_ARG', err.message);
      assert.match(err.message, /filter|exclude|allow/);
    } else {
      assert.is(err.code, 'ERR_VLK_NO_DEVICE', err.message);
    }
  }
});

const BAD: Array<[string, Record<string, unknown>, RegExp[]]> = [
  ["device 'gpu'", { device: 'gpu' }, [/options\.device/, /'gpu'/, /'cpu', 'cuda' or 'auto'/]],
  ["device 'CUDA'", { device: 'CUDA' }, [/options\.device/, /'CUDA'/]],
  ['device 1', { device: 1 }, [/options\.device/, /number/]],
  ['device true', { device: true }, [/options\.device/]],
  ["precision 'fp16'", { precision: 'fp16' }, [/options\.precision/, /'fp16'/, /'exact' or 'bf16'/]],
  ['precision 16', { precision: 16 }, [/options\.precision/]],
  ["precision 'bf16' (device default cpu)", { precision: 'bf16' }, [/options\.precision/, /bf16/, /device 'cuda'/, /'cpu'/]],
  ["precision 'bf16' with device 'cpu'", { precision: 'bf16', device: 'cpu' }, [/bf16/, /device 'cuda'/, /'cpu'/]],
  ["precision 'bf16' with device 'auto'", { precision: 'bf16', device: 'auto' }, [/bf16/, /device 'cuda'/, /'auto'/]],
];

for (const [name, extra, patterns] of BAD) {
  Options(`ERR_VLK_INVALID_ARG: ${name} (searchSync, search, binding)`, async () => {
    expectError(() => searchSync(Q, G, { k: 3, dim: D, ...(extra as any) }), 'ERR_VLK_INVALID_ARG', patterns, 'searchSync');
    let promise: Promise<unknown>;
    try {
      promise = search(Q, G, { k: 3, dim: D, ...(extra as any) });
    } catch (err: any) {
      throw new Error(`search threw synchronously instead of rejecting: ${err?.code} ${err?.message}`);
    }
    await expectRejection(promise, 'ERR_VLK_INVALID_ARG', patterns, 'search');
    try {
      binding.searchSync({ data: Q, rows: 5, cols: D }, { data: G, rows: 300, cols: D }, { k: 3, metric: 'ip', ...extra });
      assert.unreachable('binding should throw');
    } catch (err: any) {
      assert.is(err.code, 'ERR_VLK_INVALID_ARG', `binding: ${err.message}`);
      for (const re of patterns) assert.match(err.message, re, `binding: "${err.message}" should match ${re}`);
    }
  });
}

Options('an input error is reported before the device is considered', () => {
  expectError(() => searchSync(Q, G, { k: 0, dim: D, device: 'cuda' }), 'ERR_VLK_INVALID_K', [/k/], 'k = 0');
  const bad = Q.slice();
  bad[3] = NaN;
  // NaN is found by the search itself: on the CPU here, or by the GPU path when usable.
  expectError(() => searchSync(bad, G, { k: 1, dim: D, device: 'auto' }), 'ERR_VLK_NON_FINITE', [/queries/], 'NaN');
});

Options.run();

// ---------------------------------------------------------------------------------------------
const Loader = suite('loader: CUDA build preferred, CPU fallback');

// A copy of the package (package.json, dist/, the CPU addon) in a temp folder, with a fake CUDA
// build (not a loadable ELF) where the loader looks for one.
function fakePackage(where: 'build' | 'package', version?: string): string {
  const root = mkdtempSync(join(tmpdir(), 'vlk-cuda-loader-'));
  cpSync(join(repoRoot, 'package.json'), join(root, 'package.json'));
  cpSync(join(repoRoot, 'dist'), join(root, 'dist'), { recursive: true });
  mkdirSync(join(root, 'build', 'Release'), { recursive: true });
  cpSync(join(repoRoot, 'build', 'Release', 'vlkernels.node'), join(root, 'build', 'Release', 'vlkernels.node'));
  const garbage = Buffer.from('not a shared object\n');
  if (where === 'build') {
    writeFileSync(join(root, 'build', 'Release', 'vlkernels_cuda.node'), garbage);
  } else {
    const pkg = join(root, 'node_modules', '@vlkernels', `${process.platform}-${process.arch}-cuda`);
    mkdirSync(pkg, { recursive: true });
    const own = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version;
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: `@vlkernels/${process.platform}-${process.arch}-cuda`, version: version ?? own }));
    writeFileSync(join(pkg, 'vlkernels_cuda.node'), garbage);
  }
  return root;
}

const probe = (root: string) =>
  `const v = require(${JSON.stringify(join(root, 'dist', 'cjs', 'index.js'))});` +
  `const r = v.searchSync(new Float32Array([1, 0, 0, 1]), new Float32Array([0, 1, 1, 0, 1, 1]), { k: 2, dim: 2, device: 'auto' });` +
  `console.log(JSON.stringify({ cuda: v.info().cuda, indices: Array.from(r.indices) }));`;

Loader('a CUDA build in build/Release that cannot load falls back to the CPU build, with the reason', () => {
  const root = fakePackage('build');
  try {
    const r = runNode(probe(root), { VLK_CUDA: undefined });
    assert.is(r.status, 0, r.stderr);
    assert.is(r.json.cuda.built, false);
    assert.is(r.json.cuda.usable, false);
    assert.match(r.json.cuda.reason, /vlkernels_cuda\.node/);
    assert.match(r.json.cuda.reason, /failed to load/);
    assert.match(r.json.cuda.reason, /CPU build/);
    assert.ok(r.json.cuda.addonPath.endsWith('vlkernels_cuda.node'), 'addonPath');
    assert.equal(r.json.indices, [1, 2, 0, 2], 'the CPU build answers');

    const off = runNode(probe(root), { VLK_CUDA: '0' });
    assert.is(off.status, 0, off.stderr);
    assert.is(off.json.cuda.built, false);
    assert.match(off.json.cuda.reason, /VLK_CUDA=0/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

Loader('the optional package @vlkernels/<platform>-<arch>-cuda: tried when its version matches', () => {
  const same = fakePackage('package');
  const other = fakePackage('package', '0.0.0-other');
  try {
    const r = runNode(probe(same), { VLK_CUDA: undefined });
    assert.is(r.status, 0, r.stderr);
    assert.match(r.json.cuda.reason, /failed to load/);
    assert.match(r.json.cuda.addonPath, /@vlkernels/);
    const m = runNode(probe(other), { VLK_CUDA: undefined });
    assert.is(m.status, 0, m.stderr);
    assert.match(m.json.cuda.reason, /0\.0\.0-other does not match vlkernels/);
    assert.equal(m.json.indices, [1, 2, 0, 2]);
  } finally {
    rmSync(same, { recursive: true, force: true });
    rmSync(other, { recursive: true, force: true });
  }
});

Loader.run();

// ---------------------------------------------------------------------------------------------
// Runs only where a CUDA build found a usable GPU.
const Gpu = suite('device cuda equals the CPU (needs a usable GPU)');
const gpuTest: (name: string, fn: () => void | Promise<void>) => void = cuda.usable ? Gpu : Gpu.skip;
if (!cuda.usable) console.log(`skipped: no usable CUDA device (${cuda.reason})`);

gpuTest('exact: ids and scores equal the CPU for ip / cosine / l2, N in 1, 7, 513, 100k (D 128), k 1, 10, 100, ties', async () => {
  const d = 128;
  const queries = gaussianMatrix(33, d, 11);
  for (const n of [1, 7, 513, 100_000]) {
    const gallery = galleryWithTies(n, d, 12 + n);
    if (n > 2) gallery.set(queries.subarray(0, d), 2 * d); // an exact match of query 0
    for (const metric of METRICS) {
      for (const k of [1, 10, 100]) {
        const options = { k, dim: d, metric, clamp: true };
        const cpu = searchSync(queries, gallery, options);
        const what = `${metric} N=${n} k=${k}`;
        assertSameResult(searchSync(queries, gallery, { ...options, device: 'cuda' }), cpu, `${what} cuda sync`);
        assertSameResult(await search(queries, gallery, { ...options, device: 'cuda' }), cpu, `${what} cuda async`);
        if (k === 10) assertSameResult(searchSync(queries, gallery, { ...options, device: 'auto' }), cpu, `${what} auto`);
      }
    }
  }
});

gpuTest("precision 'bf16': recall@10 >= 0.95 against exact (100k x 128, 64 queries)", () => {
  const d = 128;
  const n = 100_000;
  const gallery = gaussianMatrix(n, d, 21);
  const queries = gaussianMatrix(64, d, 22);
  for (const metric of METRICS) {
    const exact = searchSync(queries, gallery, { k: 10, dim: d, metric });
    const approx = searchSync(queries, gallery, { k: 10, dim: d, metric, device: 'cuda', precision: 'bf16' });
    let hits = 0;
    for (let q = 0; q < 64; q++) {
      const truth = new Set(exact.indices.subarray(q * 10, q * 10 + 10));
      for (const id of approx.indices.subarray(q * 10, q * 10 + 10)) if (truth.has(id)) hits++;
    }
    const recall = hits / (64 * 10);
    console.log(`  bf16 ${metric}: recall@10 ${recall.toFixed(4)}`);
    assert.ok(recall >= 0.95, `${metric}: recall@10 ${recall} < 0.95`);
  }
});

Gpu.run();
