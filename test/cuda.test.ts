// The CUDA backend's plumbing (test/cuda.test.ts): info().cuda explains itself, `device` and
// `precision` are validated with typed errors, 'cpu' and 'auto' give the default results, 'cuda'
// without a usable GPU is ERR_VLK_NO_DEVICE naming the reason, and the loader prefers a CUDA build
// (build/Release/vlkernels_cuda.node or @vlkernels/<platform>-<arch>-cuda), falling back to the CPU
// build with the reason when it cannot load or VLK_CUDA=0. FlatIndex({ device }) resolves and
// validates its device the same way ('auto' is 'cpu' without a usable GPU or with bf16/i8
// storage). A last suite runs only where info().cuda.usable: device 'cuda' equals the CPU (ids and
// scores) and bf16 recall@10 >= 0.95, and a 'cuda' FlatIndex (its rows resident on the GPU)
// equals a CPU FlatIndex through adds, removes, compaction and filters, re-uploading after each
// change. Nothing here depends on whether a CUDA build is present.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { binding, FlatIndex, info, search, searchSync, VlkError } from './helpers/lib';
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

/** FlatIndex results equal: ids, scores (bit for bit), counts and rescored. */
function assertSameIndexResult(a: any, b: any, what: string): void {
  assert.is(a.k, b.k, `${what}: k`);
  assert.is(a.count, b.count, `${what}: count`);
  assert.equal(Array.from(a.counts), Array.from(b.counts), `${what}: counts`);
  assert.equal(Array.from(a.rescored), Array.from(b.rescored), `${what}: rescored`);
  const sa = new Uint32Array(a.scores.buffer, a.scores.byteOffset, a.scores.length);
  const sb = new Uint32Array(b.scores.buffer, b.scores.byteOffset, b.scores.length);
  for (let p = 0; p < a.ids.length; p++) {
    if (Number(a.ids[p]) !== Number(b.ids[p]) || sa[p] !== sb[p]) {
      const q = Math.floor(p / a.k);
      throw new Error(
        `${what}: first difference at query ${q} position ${p % a.k}: ` +
          `(id ${a.ids[p]}, score ${a.scores[p]}) vs (id ${b.ids[p]}, score ${b.scores[p]})`,
      );
    }
  }
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
  ["precision 'fp16'", { precision: 'fp16' }, [/options\.precision/, /'fp16'/, /'exact', 'bf16' or 'i8'/]],
  ['precision 16', { precision: 16 }, [/options\.precision/]],
  // 'bf16' is exact on the CPU and approximate on the GPU, so 'auto' would make it machine-dependent.
  ["precision 'bf16' with device 'auto'", { precision: 'bf16', device: 'auto' }, [/bf16/, /'cpu' or 'cuda'/, /'auto'/]],
  ["precision 'i8' with device 'auto'", { precision: 'i8', device: 'auto' }, [/i8/, /'auto'/]],
  ["precision 'i8' with device 'cuda'", { precision: 'i8', device: 'cuda' }, [/'i8' precision is for device 'cpu'/, /'cuda'/]],
];

Options("precision 'bf16' / 'i8' on the CPU: the exact results (bf16 scan, fp32 re-score)", async () => {
  const base = searchSync(Q, G, { k: 7, dim: D, metric: 'cosine' });
  for (const precision of ['bf16', 'i8'] as const) {
    assertSameResult(searchSync(Q, G, { k: 7, dim: D, metric: 'cosine', precision }), base, `${precision} sync`);
    assertSameResult(await search(Q, G, { k: 7, dim: D, metric: 'cosine', precision, device: 'cpu' }), base, `${precision} async`);
  }
});

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
const IndexDevice = suite('FlatIndex device option');

const IDX_D = 8;
const IDX_G = galleryWithTies(40, IDX_D, 31);
const IDX_Q = gaussianMatrix(3, IDX_D, 32);

IndexDevice("device 'cuda' without a usable GPU is ERR_VLK_NO_DEVICE naming the reason", () => {
  if (cuda.usable) {
    const index = new FlatIndex({ dim: IDX_D, device: 'cuda' });
    assert.is(index.device, 'cuda');
    index.close();
    console.log("  skipped the no-device check: CUDA is usable here (index.device is 'cuda')");
    return;
  }
  const patterns = [/options\.device/, /cuda/, escapeRegExp(cuda.reason)];
  expectError(() => new FlatIndex({ dim: IDX_D, device: 'cuda' }), 'ERR_VLK_NO_DEVICE', patterns, 'new FlatIndex');
  expectError(() => new FlatIndex({ dim: IDX_D, metric: 'l2', storage: 'f32', device: 'cuda' }), 'ERR_VLK_NO_DEVICE', patterns, 'f32 l2');
  try {
    binding.createFlatIndex(IDX_D, 'ip', 'f32', false, 'cuda');
    assert.unreachable('binding should throw');
  } catch (err: any) {
    assert.is(err.code, 'ERR_VLK_NO_DEVICE', err.message);
    assert.match(err.message, escapeRegExp(cuda.reason));
  }
});

IndexDevice("'auto' resolves to 'cuda' only with a usable GPU and f32 storage, and works", async () => {
  for (const metric of METRICS) {
    const cpu = new FlatIndex({ dim: IDX_D, metric });
    const auto = new FlatIndex({ dim: IDX_D, metric, device: 'auto' });
    assert.is(cpu.device, 'cpu');
    assert.is(auto.device, cuda.usable ? 'cuda' : 'cpu', `${metric}: auto resolves`);
    for (const index of [cpu, auto]) {
      index.add(IDX_G);
      index.remove([3, 17]);
    }
    assertSameIndexResult(auto.searchSync(IDX_Q, { k: 12 }), cpu.searchSync(IDX_Q, { k: 12 }), `${metric} auto sync`);
    assertSameIndexResult(await auto.search(IDX_Q, { k: 50 }), await cpu.search(IDX_Q, { k: 50 }), `${metric} auto async, k > size`);
    cpu.close();
    auto.close();
  }
  for (const storage of ['bf16', 'i8'] as const) {
    const index = new FlatIndex({ dim: IDX_D, storage, device: 'auto' });
    assert.is(index.device, 'cpu', `${storage} + auto stays on the CPU`);
    index.close();
  }
  assert.is(new FlatIndex({ dim: IDX_D }).device, 'cpu', 'default');
  assert.is(new FlatIndex({ dim: IDX_D, device: 'cpu' }).device, 'cpu', "'cpu'");
  assert.is(binding.createFlatIndex(IDX_D, 'ip', 'f32', false, 'auto').describe().device, cuda.usable ? 'cuda' : 'cpu');
});

IndexDevice("ERR_VLK_INVALID_ARG: storage 'bf16' / 'i8' with device 'cuda', unknown devices, precision", () => {
  for (const storage of ['bf16', 'i8'] as const) {
    const patterns = [/options\.device/, /'cuda'/, /'f32'/, new RegExp(`'${storage}'`)];
    expectError(() => new FlatIndex({ dim: IDX_D, storage, device: 'cuda' }), 'ERR_VLK_INVALID_ARG', patterns, `${storage} + cuda`);
    expectError(
      () => new FlatIndex({ dim: IDX_D, storage, approximate: true, device: 'cuda' }),
      'ERR_VLK_INVALID_ARG',
      patterns,
      `${storage} approximate + cuda`,
    );
    try {
      binding.createFlatIndex(IDX_D, 'ip', storage, false, 'cuda');
      assert.unreachable('binding should throw');
    } catch (err: any) {
      assert.is(err.code, 'ERR_VLK_INVALID_ARG', `binding ${storage}: ${err.message}`);
      for (const re of patterns) assert.match(err.message, re);
    }
  }
  for (const device of ['gpu', 'CUDA', 1, true]) {
    expectError(
      () => new FlatIndex({ dim: IDX_D, device: device as any }),
      'ERR_VLK_INVALID_ARG',
      [/options\.device/, /'cpu', 'cuda' or 'auto'/],
      `device ${String(device)}`,
    );
  }
  const index = new FlatIndex({ dim: IDX_D, device: 'auto' });
  index.add(IDX_G);
  if (index.device === 'cpu') {
    expectError(
      () => index.searchSync(IDX_Q, { k: 3, precision: 'bf16' }),
      'ERR_VLK_INVALID_ARG',
      [/options\.precision/, /bf16/, /device 'cuda'/, /'cpu'/],
      "precision 'bf16' on a 'cpu' index",
    );
  }
  expectError(
    () => index.searchSync(IDX_Q, { k: 3, precision: 'fp16' as any }),
    'ERR_VLK_INVALID_ARG',
    [/options\.precision/, /'fp16'/, /'exact' or 'bf16'/],
    "precision 'fp16'",
  );
  assertSameIndexResult(index.searchSync(IDX_Q, { k: 3, precision: 'exact' }), index.searchSync(IDX_Q, { k: 3 }), "precision 'exact'");
  index.close();
  assert.is(index.device, index.device, 'device stays readable after close()');
});

IndexDevice('FlatIndex.load({ device }): validated before reading, resolved like the constructor', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vlk-cuda-index-'));
  try {
    const file = join(dir, 'g.vlk');
    const source = new FlatIndex({ dim: IDX_D, metric: 'cosine' });
    source.add(IDX_G);
    source.saveSync(file);
    const expected = source.searchSync(IDX_Q, { k: 7 });
    for (const load of [
      (device?: any) => FlatIndex.loadSync(file, { device }),
      (device?: any) => FlatIndex.load(file, { device }),
    ]) {
      const plain = await load();
      assert.is(plain.device, 'cpu', 'default: cpu');
      const auto = await load('auto');
      assert.is(auto.device, cuda.usable ? 'cuda' : 'cpu', 'auto');
      assertSameIndexResult(auto.searchSync(IDX_Q, { k: 7 }), expected, 'loaded with auto');
      let err: any;
      try {
        await load('gpu');
      } catch (e) {
        err = e;
      }
      assert.is(err?.code, 'ERR_VLK_INVALID_ARG', `device 'gpu': ${err?.message}`);
      err = undefined;
      try {
        const onGpu = await load('cuda');
        assert.ok(cuda.usable, 'cuda loads only with a usable GPU');
        assert.is(onGpu.device, 'cuda');
        assertSameIndexResult(onGpu.searchSync(IDX_Q, { k: 7 }), expected, 'loaded with cuda');
      } catch (e) {
        err = e;
      }
      if (!cuda.usable) {
        assert.is(err?.code, 'ERR_VLK_NO_DEVICE', `device 'cuda': ${err?.message}`);
        assert.match(err.message, escapeRegExp(cuda.reason));
      } else if (err) {
        throw err;
      }
      plain.close();
      auto.close();
    }
    source.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

IndexDevice.run();

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
    const r = runNode(probe(root), { VLK_CUDA: undefined, VLKERNELS_PREBUILD: undefined });
    assert.is(r.status, 0, r.stderr);
    assert.is(r.json.cuda.built, false);
    assert.is(r.json.cuda.usable, false);
    assert.match(r.json.cuda.reason, /vlkernels_cuda\.node/);
    assert.match(r.json.cuda.reason, /failed to load/);
    assert.match(r.json.cuda.reason, /CPU build/);
    assert.ok(r.json.cuda.addonPath.endsWith('vlkernels_cuda.node'), 'addonPath');
    assert.equal(r.json.indices, [1, 2, 0, 2], 'the CPU build answers');

    const off = runNode(probe(root), { VLK_CUDA: '0', VLKERNELS_PREBUILD: undefined });
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
    const r = runNode(probe(same), { VLK_CUDA: undefined, VLKERNELS_PREBUILD: undefined });
    assert.is(r.status, 0, r.stderr);
    assert.match(r.json.cuda.reason, /failed to load/);
    assert.match(r.json.cuda.addonPath, /@vlkernels/);
    const m = runNode(probe(other), { VLK_CUDA: undefined, VLKERNELS_PREBUILD: undefined });
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

/** A reference (CPU) FlatIndex and a 'cuda' one, fed the same calls. */
function indexPair(dim: number, metric: Metric): { cpu: InstanceType<typeof FlatIndex>; gpu: InstanceType<typeof FlatIndex> } {
  const cpu = new FlatIndex({ dim, metric });
  const gpu = new FlatIndex({ dim, metric, device: 'cuda' });
  assert.is(gpu.device, 'cuda');
  return { cpu, gpu };
}

async function assertIndexEqual(
  pair: { cpu: InstanceType<typeof FlatIndex>; gpu: InstanceType<typeof FlatIndex> },
  queries: Float32Array,
  what: string,
  extra: Record<string, unknown> = {},
): Promise<void> {
  for (const k of [1, 10, 100]) {
    const cpu = pair.cpu.searchSync(queries, { k, ...extra });
    assertSameIndexResult(pair.gpu.searchSync(queries, { k, ...extra }), cpu, `${what} k=${k} sync`);
    assertSameIndexResult(await pair.gpu.search(queries, { k, ...extra }), cpu, `${what} k=${k} async`);
  }
}

gpuTest("a 'cuda' FlatIndex equals the CPU FlatIndex (ids, scores) through adds, removes, compact, filters; ip / cosine / l2, ties", async () => {
  const d = 48;
  const queries = gaussianMatrix(17, d, 41);
  for (const metric of METRICS) {
    const pair = indexPair(d, metric);
    const { cpu, gpu } = pair;
    // Three adds: blocks of 1,024 / 2,048 rows on the CPU, one contiguous mirror on the GPU.
    const a = galleryWithTies(1500, d, 42);
    a.set(queries.subarray(0, d), 7 * d); // an exact match of query 0
    for (const index of [cpu, gpu]) index.add(a);
    await assertIndexEqual(pair, queries, `${metric} after add`);
    const b = galleryWithTies(700, d, 43);
    b.set(a.subarray(d, 2 * d), 11 * d); // ties across adds
    for (const index of [cpu, gpu]) index.add(b, Float64Array.from({ length: 700 }, (_, i) => 10_000 + 3 * i));
    await assertIndexEqual(pair, queries, `${metric} after a second add (user ids)`);
    const removed = [0, 1, 7, 5, 10, 10_003, 10_300, 1499, ...Array.from({ length: 200 }, (_, i) => 300 + 2 * i)];
    for (const index of [cpu, gpu]) index.remove(removed);
    await assertIndexEqual(pair, queries, `${metric} after remove`);
    const filter = {
      allow: Array.from({ length: 900 }, (_, i) => (i * 7) % 1500).concat([10_000, 10_006, 77_777]),
      exclude: Array.from({ length: 17 }, (_, q) => (q % 3 === 0 ? null : [q, 10_000 + 3 * q, 5, 123_456])),
    };
    await assertIndexEqual(pair, queries, `${metric} with allow + exclude`, { filter });
    await assertIndexEqual(pair, queries, `${metric} with exclude only`, { filter: { exclude: filter.exclude } });
    await assertIndexEqual(pair, queries, `${metric} allowing nothing`, { filter: { allow: [] } });
    for (const index of [cpu, gpu]) index.compact();
    await assertIndexEqual(pair, queries, `${metric} after compact`);
    for (const index of [cpu, gpu]) index.add(galleryWithTies(300, d, 44));
    await assertIndexEqual(pair, queries, `${metric} after compact + add`);
    // k beyond the size pads, as on the CPU.
    const small = indexPair(d, metric);
    for (const index of [small.cpu, small.gpu]) index.add(a.subarray(0, 5 * d));
    assertSameIndexResult(small.gpu.searchSync(queries, { k: 10 }), small.cpu.searchSync(queries, { k: 10 }), `${metric} k > size`);
    for (const index of [small.cpu, small.gpu]) index.remove([0, 1, 2, 3, 4]);
    assertSameIndexResult(small.gpu.searchSync(queries, { k: 3 }), small.cpu.searchSync(queries, { k: 3 }), `${metric} emptied`);
    // bf16: approximate scores, but valid live ids.
    const approx = gpu.searchSync(queries, { k: 10, precision: 'bf16' });
    for (const id of approx.ids) assert.ok(Number(id) >= 0 && gpu.has(Number(id)), `${metric} bf16 returned id ${id}`);
    for (const index of [cpu, gpu, small.cpu, small.gpu]) index.close();
  }
});

gpuTest("a 'cuda' FlatIndex re-uploads after each change (results follow adds and removes)", async () => {
  const d = 32;
  const gallery = gaussianMatrix(2000, d, 51);
  const queries = gaussianMatrix(4, d, 52);
  const index = new FlatIndex({ dim: d, metric: 'ip', device: 'cuda' });
  index.add(gallery);
  const before = index.searchSync(queries, { k: 5 });
  // A vector far along query 2 becomes its best match at once.
  const strong = queries.slice(2 * d, 3 * d).map((v) => v * 100);
  index.add(strong, [999_999]);
  const after = await index.search(queries, { k: 5 });
  assert.is(after.ids[2 * 5], 999_999, 'the new vector is first for query 2');
  index.remove([999_999]);
  assertSameIndexResult(index.searchSync(queries, { k: 5 }), before, 'removing it restores the results');
  index.remove([Number(before.ids[0])]);
  const without = index.searchSync(queries, { k: 5 });
  assert.is.not(without.ids[0], before.ids[0], "query 0's best id is gone after its removal");
  assert.is(without.ids[0], before.ids[1], 'the runner-up moves up');
  index.close();
});

gpuTest("a 'cuda' FlatIndex: concurrent searches during a change share one upload and stay exact", async () => {
  const d = 64;
  const queries = gaussianMatrix(8, d, 61);
  const cpu = new FlatIndex({ dim: d, metric: 'cosine' });
  const gpu = new FlatIndex({ dim: d, metric: 'cosine', device: 'cuda' });
  for (const index of [cpu, gpu]) index.add(gaussianMatrix(5000, d, 62));
  const expected = cpu.searchSync(queries, { k: 20 });
  const results = await Promise.all(Array.from({ length: 8 }, () => gpu.search(queries, { k: 20 })));
  results.forEach((r, i) => assertSameIndexResult(r, expected, `concurrent search ${i}`));
  cpu.close();
  gpu.close();
});

Gpu.run();
