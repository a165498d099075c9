// ISA paths and info() (test/isa.test.ts): every path in info().isas gives indices and scores
// bit-identical to the scalar path; setIsa validation; VLK_FORCE_ISA in a child process; the
// shape of info(); the CJS and ESM entries share one native instance.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { info, search, searchSync, setIsa, VlkError } from './helpers/lib';
import { gaussianMatrix } from './helpers/random';
import { assertSameResult } from './helpers/compare';
import { runNode } from './helpers/child';
import { distCjs, repoRoot } from './helpers/paths';
import { assertSearch, referenceSearch, type Metric } from './reference/search';

const METRICS: Metric[] = ['ip', 'cosine', 'l2'];
const ALL_ISAS = ['scalar', 'avx2', 'avx512'];
const forced = process.env.VLK_FORCE_ISA;

/** Runs fn with the process-wide ISA override set, always clearing it afterwards. */
async function withIsa<T>(isa: string, fn: () => T | Promise<T>): Promise<T> {
  setIsa(isa as any);
  try {
    return await fn();
  } finally {
    setIsa(null);
  }
}

// ---------------------------------------------------------------------------------------------
const Info = suite('info()');

Info('reports version, ISA, thread pool, Node-API and CUDA fields', () => {
  const i = info();
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
  console.log(`\n    info(): ${JSON.stringify(i)}`);
  assert.is(i.version, pkg.version, 'version');
  assert.type(i.isa, 'string');
  assert.ok(Array.isArray(i.isas) && i.isas.length >= 1, 'isas is a non-empty array');
  assert.is(i.isas[0], 'scalar', 'isas starts with scalar');
  for (const isa of i.isas) assert.ok(ALL_ISAS.includes(isa), `known isa ${isa}`);
  assert.equal(
    [...i.isas].sort((a, b) => ALL_ISAS.indexOf(a) - ALL_ISAS.indexOf(b)),
    i.isas,
    'isas in ascending order',
  );
  assert.ok(i.isas.includes(i.isa), `isa ${i.isa} is one of isas`);
  assert.ok(ALL_ISAS.includes(i.detectedIsa), 'detectedIsa');
  assert.ok(Number.isInteger(i.threads) && i.threads >= 1, 'threads is an integer >= 1');
  assert.ok(Number.isInteger(i.queueDepth) && i.queueDepth >= 0, 'queueDepth is an integer >= 0');
  assert.ok(Number.isInteger(i.napiVersion) && i.napiVersion >= 8, 'napiVersion >= 8');
  assert.type(i.cuda, 'object');
  assert.type(i.cuda.built, 'boolean');
  assert.type(i.cuda.usable, 'boolean');
  assert.type(i.cuda.reason, 'string');
  if (!i.cuda.built) assert.not.ok(i.cuda.usable, 'CUDA not built cannot be usable');
  if (!i.cuda.usable) assert.ok(i.cuda.reason.length > 0, 'a reason when CUDA is not usable');
});

Info('without VLK_FORCE_ISA the best detected path is in use and listed last', () => {
  if (forced !== undefined) return; // a CI job may cap the path; the child tests cover that
  const i = info();
  assert.is(i.isa, i.detectedIsa);
  assert.is(i.isas[i.isas.length - 1], i.detectedIsa);
  assert.is(i.isaError, undefined);
});

Info('the pool has one thread per core (or VLK_THREADS)', () => {
  const env = Number(process.env.VLK_THREADS);
  assert.is(info().threads, Number.isInteger(env) && env > 0 ? env : availableParallelism());
});

Info.run();

// ---------------------------------------------------------------------------------------------
const SetIsa = suite('setIsa');

SetIsa('each listed path can be selected and null restores the default', async () => {
  const before = info().isa;
  for (const isa of info().isas) {
    await withIsa(isa, () => assert.is(info().isa, isa, `setIsa('${isa}')`));
    assert.is(info().isa, before, `after setIsa(null) from ${isa}`);
  }
});

SetIsa("setIsa('bogus') throws VlkError ERR_VLK_INVALID_ARG naming the value", () => {
  const before = info().isa;
  try {
    setIsa('bogus' as any);
    assert.unreachable('setIsa(bogus) should throw');
  } catch (err: any) {
    assert.instance(err, VlkError);
    assert.is(err.code, 'ERR_VLK_INVALID_ARG');
    assert.match(err.message, /bogus/);
  } finally {
    setIsa(null);
  }
  assert.is(info().isa, before, 'a failed setIsa changes nothing');
});

SetIsa('a path above the cap throws ERR_VLK_UNSUPPORTED_ISA', () => {
  const isas = info().isas;
  const missing = ALL_ISAS.filter((x) => !isas.includes(x));
  if (missing.length === 0) {
    // Every path is usable here; the VLK_FORCE_ISA=avx2 child test covers the cap.
    return;
  }
  try {
    setIsa(missing[missing.length - 1] as any);
    assert.unreachable('should throw');
  } catch (err: any) {
    assert.instance(err, VlkError);
    assert.is(err.code, 'ERR_VLK_UNSUPPORTED_ISA');
  } finally {
    setIsa(null);
  }
});

SetIsa.run();

// ---------------------------------------------------------------------------------------------
const Paths = suite('every ISA path is bit-identical to scalar');

// [Q, N, D, k]: tails in D (not a multiple of 8 or 16), N not a multiple of any tile, GEMV-shaped
// Q = 1, large k (selection path), D = 1.
const SHAPES: Array<[number, number, number, number]> = [
  [33, 1000, 512, 10],
  [1, 4097, 768, 10],
  [7, 37, 3, 37],
  [5, 300, 17, 300],
  [33, 4097, 1, 5],
  [9, 2000, 100, 1000],
  [2, 65, 15, 64],
  [16, 129, 33, 1],
];

for (const metric of METRICS) {
  Paths(`${metric}: every path vs scalar on ${SHAPES.length} shapes (scalar checked against the reference)`, async () => {
    for (const [q, n, d, k] of SHAPES) {
      const queries = gaussianMatrix(q, d, 7 * n + d);
      const gallery = gaussianMatrix(n, d, 11 * n + d);
      const opts = { k, metric, dim: d };
      const scalar = await withIsa('scalar', () => searchSync(queries, gallery, opts));
      assertSearch(referenceSearch(queries, gallery, d, metric), scalar, k, 'scalar path');
      for (const isa of info().isas) {
        const got = await withIsa(isa, () => searchSync(queries, gallery, opts));
        assertSameResult(got, scalar, `${isa} vs scalar, Q=${q} N=${n} D=${d} k=${k}`);
      }
    }
  });
}

Paths('ties, zero vectors and mixed norms: every path vs scalar', async () => {
  const d = 40;
  const n = 700;
  const gallery = gaussianMatrix(n, d, 901);
  for (let r = 0; r < n; r++) {
    const s = 10 ** ((r % 7) - 3);
    for (let c = 0; c < d; c++) gallery[r * d + c] *= s;
  }
  gallery.copyWithin(600 * d, 5 * d, 6 * d);
  gallery.copyWithin(601 * d, 5 * d, 6 * d);
  gallery.fill(0, 9 * d, 10 * d);
  const queries = gaussianMatrix(6, d, 902);
  queries.set(gallery.subarray(5 * d, 6 * d), 0);
  queries.fill(0, d, 2 * d);
  for (const metric of METRICS) {
    const opts = { k: 50, metric, dim: d };
    const scalar = await withIsa('scalar', () => searchSync(queries, gallery, opts));
    assertSearch(referenceSearch(queries, gallery, d, metric), scalar, 50, 'scalar path');
    for (const isa of info().isas) {
      assertSameResult(await withIsa(isa, () => searchSync(queries, gallery, opts)), scalar, `${metric} ${isa}`);
    }
  }
});

Paths('async and multi-threaded calls follow setIsa too', async () => {
  const d = 70;
  const queries = gaussianMatrix(12, d, 911);
  const gallery = gaussianMatrix(3001, d, 912);
  for (const metric of METRICS) {
    const opts = { k: 25, metric, dim: d };
    const scalar = await withIsa('scalar', () => search(queries, gallery, { ...opts, threads: 1 }));
    for (const isa of info().isas) {
      const got = await withIsa(isa, () => search(queries, gallery, { ...opts, threads: 2 }));
      assertSameResult(got, scalar, `${metric} ${isa} async threads=2`);
    }
  }
});

Paths.run();

// ---------------------------------------------------------------------------------------------
const Env = suite('VLK_FORCE_ISA (child processes)');

// The child builds deterministic inputs from a formula the parent repeats, searches, and prints
// its info() and the result as JSON.
const CHILD = `
const out = { stage: 'require' };
try {
  const v = require(${JSON.stringify(distCjs)});
  out.stage = 'info';
  const d = 21, n = 333, q = 4;
  const f = (i) => Math.sin(i * 12.9898 + 1) * 3;
  const queries = Float32Array.from({ length: q * d }, (_, i) => f(i));
  const gallery = Float32Array.from({ length: n * d }, (_, i) => f(i + 1000));
  out.info = v.info();
  out.stage = 'searchSync';
  const r = v.searchSync(queries, gallery, { k: 15, metric: 'l2', dim: d });
  out.indices = Array.from(r.indices);
  out.scores = Array.from(new Uint32Array(r.scores.buffer, r.scores.byteOffset, r.scores.length));
  try { v.setIsa('avx512'); out.setAvx512 = 'ok'; } catch (e) { out.setAvx512 = e.code; }
  out.stage = 'done';
} catch (e) {
  out.error = { name: e.name, ctor: e.constructor && e.constructor.name, code: e.code, message: e.message };
}
console.log(JSON.stringify(out));
`;

function parentResult() {
  const d = 21;
  const f = (i: number) => Math.sin(i * 12.9898 + 1) * 3;
  const queries = Float32Array.from({ length: 4 * d }, (_, i) => f(i));
  const gallery = Float32Array.from({ length: 333 * d }, (_, i) => f(i + 1000));
  return { queries, gallery, d };
}

Env('VLK_FORCE_ISA=scalar: info().isa is scalar, only scalar listed, results equal setIsa(scalar)', async () => {
  const r = runNode(CHILD, { VLK_FORCE_ISA: 'scalar' });
  assert.ok(r.json, `child printed JSON (status ${r.status}, stderr: ${r.stderr.slice(0, 500)})`);
  assert.is(r.json.error, undefined, `child error: ${JSON.stringify(r.json.error)}`);
  assert.is(r.json.info.isa, 'scalar');
  assert.equal(r.json.info.isas, ['scalar']);
  assert.is(r.json.info.detectedIsa, info().detectedIsa, 'detectedIsa still reports the CPU');
  if (info().detectedIsa === 'avx512') assert.is(r.json.setAvx512, 'ERR_VLK_UNSUPPORTED_ISA', 'setIsa above the cap');
  const { queries, gallery, d } = parentResult();
  const mine = await withIsa('scalar', () => searchSync(queries, gallery, { k: 15, metric: 'l2', dim: d }));
  assert.equal(r.json.indices, Array.from(mine.indices));
  assert.equal(r.json.scores, Array.from(new Uint32Array(mine.scores.buffer, mine.scores.byteOffset, mine.scores.length)));
});

Env('VLK_FORCE_ISA=avx2 caps the path at avx2, or fails where the CPU lacks AVX2', () => {
  const r = runNode(CHILD, { VLK_FORCE_ISA: 'avx2' });
  assert.ok(r.json, `child printed JSON (status ${r.status}, stderr: ${r.stderr.slice(0, 500)})`);
  if (!info().detectedIsa.startsWith('avx')) {
    // Forcing a path the CPU lacks is an error, never a silent fallback.
    assert.is(r.json.error?.code, 'ERR_VLK_UNSUPPORTED_ISA', JSON.stringify(r.json).slice(0, 300));
    return;
  }
  assert.is(r.json.error, undefined, `child error: ${JSON.stringify(r.json.error)}`);
  assert.is(r.json.info.isa, 'avx2');
  assert.equal(r.json.info.isas, ['scalar', 'avx2']);
  if (info().detectedIsa === 'avx512') assert.is(r.json.setAvx512, 'ERR_VLK_UNSUPPORTED_ISA', 'setIsa above the cap');
});

Env('VLK_FORCE_ISA=bogus: loading fails with a VlkError naming the variable and value', () => {
  const r = runNode(CHILD, { VLK_FORCE_ISA: 'bogus' });
  assert.ok(r.json, `child printed JSON (status ${r.status}, stderr: ${r.stderr.slice(0, 500)})`);
  assert.ok(r.json.error, `require should fail, got ${JSON.stringify(r.json).slice(0, 300)}`);
  const e = r.json.error;
  assert.is(r.json.stage, 'require', 'the failure happens when the module loads');
  assert.ok(e.name === 'VlkError' || e.ctor === 'VlkError', `a VlkError, got name ${e.name} / ${e.ctor}`);
  assert.ok(typeof e.code === 'string' && e.code.startsWith('ERR_VLK_'), `code ${e.code}`);
  assert.match(e.message, /VLK_FORCE_ISA/);
  assert.match(e.message, /bogus/);
});

Env('VLK_THREADS=3 sets the pool size; results are unchanged', () => {
  const r = runNode(CHILD, { VLK_THREADS: '3' });
  assert.ok(r.json, `child printed JSON (status ${r.status}, stderr: ${r.stderr.slice(0, 500)})`);
  assert.is(r.json.error, undefined, `child error: ${JSON.stringify(r.json.error)}`);
  assert.is(r.json.info.threads, 3);
  const { queries, gallery, d } = parentResult();
  const mine = searchSync(queries, gallery, { k: 15, metric: 'l2', dim: d });
  assert.equal(r.json.indices, Array.from(mine.indices));
  assert.equal(r.json.scores, Array.from(new Uint32Array(mine.scores.buffer, mine.scores.byteOffset, mine.scores.length)));
});

Env.run();

// ---------------------------------------------------------------------------------------------
const Entries = suite('package entries');

Entries('require() and import() of vlkernels share one native instance', () => {
  const script = `
    import { createRequire } from 'node:module';
    const require = createRequire(${JSON.stringify(join(repoRoot, 'index.js'))});
    const cjs = require('vlkernels');
    const esm = await import('vlkernels');
    const out = { esmKeys: Object.keys(esm).sort(), cjsKeys: Object.keys(cjs).sort() };
    cjs.setIsa('scalar');
    out.esmSees = esm.info().isa;
    esm.setIsa(null);
    out.cjsSees = cjs.info().isa;
    out.detected = cjs.info().detectedIsa;
    const r1 = esm.searchSync(new Float32Array([1, 0, 0, 1]), new Float32Array([0, 1, 1, 0, 1, 1]), { k: 2, dim: 2 });
    out.indices = Array.from(r1.indices);
    try { esm.searchSync(new Float64Array(2), new Float32Array(2), { k: 1, dim: 2 }); } catch (e) {
      out.esmError = { name: e.name, code: e.code, isEsmVlk: e instanceof esm.VlkError };
    }
    console.log(JSON.stringify(out));
  `;
  const r = runNode(script, {}, ['--input-type=module']);
  assert.ok(r.json, `child printed JSON (status ${r.status}, stderr: ${r.stderr.slice(0, 800)})`);
  assert.ok(r.json.esmKeys.includes('searchSync') && r.json.esmKeys.includes('search'), 'ESM exports');
  for (const name of ['search', 'searchSync', 'info', 'setIsa', 'VlkError', 'errorCodes']) {
    assert.ok(r.json.esmKeys.includes(name), `ESM exports ${name}`);
    assert.ok(r.json.cjsKeys.includes(name), `CJS exports ${name}`);
  }
  assert.is(r.json.esmSees, 'scalar', 'setIsa through require() is visible through import()');
  if (forced === undefined) assert.is(r.json.cjsSees, r.json.detected, 'setIsa(null) through import() restores it');
  assert.equal(r.json.indices, [1, 2, 0, 2]);
  assert.equal(r.json.esmError, { name: 'VlkError', code: 'ERR_VLK_TYPE', isEsmVlk: true });
});

Entries.run();
