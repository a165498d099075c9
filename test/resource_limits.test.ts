// Resource limits (test/resource_limits.test.ts): calls whose scalar parameters (batch, bank size,
// depth, dims, grid size) or whose spec sizes demand more memory than any machine has, or overflow
// 64-bit size arithmetic, fail fast (< 1 s) with ERR_VLK_OUT_OF_MEMORY / ERR_VLK_SHAPE naming the
// argument and the numbers, before anything is allocated. Each case runs in a child process, so
// a regression that aborts or is killed fails its test instead of the whole run.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runNode } from './helpers/child';
import { distCjs } from './helpers/paths';

// The child runs `body` (an expression; a Promise is awaited) and prints what it threw and how
// long the call took.
function probe(body: string): { name?: string; code?: string; message?: string; ms: number; ok: boolean } {
  const script = `
    const L = require(${JSON.stringify(distCjs)});
    const ones = (n) => new Float32Array(n).fill(1);
    const view = (rows, cols) => ({ data: ones(rows * cols), rows, cols });
    const t0 = process.hrtime.bigint();
    const done = (e) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      console.log(JSON.stringify(e ? { ok: false, name: e.name, code: e.code, message: String(e.message), ms } : { ok: true, ms }));
    };
    try {
      const r = (${body});
      if (r && typeof r.then === 'function') r.then(() => done(), done); else done();
    } catch (e) { done(e); }`;
  const r = runNode(script);
  assert.ok(r.json !== undefined, `child printed no result (status ${r.status}, signal ${r.signal}): ${r.stderr.slice(-400)}`);
  return r.json;
}

/** The call fails with `code`, a message matching every pattern, within a second. */
function expectFast(body: string, code: string, ...patterns: RegExp[]): void {
  const r = probe(body);
  assert.not.ok(r.ok, 'the call should fail');
  assert.is(r.code, code, r.message);
  for (const p of patterns) assert.match(r.message as string, p);
  assert.ok(r.ms < 1000, `took ${r.ms} ms`);
}

const B20 = 2 ** 20;
const Limits = suite('resource limits: sizes beyond memory fail fast with a typed error');

Limits('twoHopLossSync with B x M = 2^20 x 2^20: ERR_VLK_OUT_OF_MEMORY naming B x M', () => {
  expectFast(`L.twoHopLossSync({ query: view(${B20}, 1), targetTokens: { data: ones(${B20}), dims: [${B20}, 1, 1] } })`,
    'ERR_VLK_OUT_OF_MEMORY', /twoHopLoss: the B x M/, /1048576 x 1048576/, /bytes/);
});

Limits('twoHopLoss (async) with B x M = 2^20 x 2^20 rejects with ERR_VLK_OUT_OF_MEMORY naming B x M', () => {
  expectFast(`L.twoHopLoss({ query: view(${B20}, 1), targetTokens: { data: ones(${B20}), dims: [${B20}, 1, 1] } })`,
    'ERR_VLK_OUT_OF_MEMORY', /the B x M/, /1048576 x 1048576/);
});

Limits('clipLossSync with B = 2^20, D = 1: ERR_VLK_OUT_OF_MEMORY naming the B x B scratch', () => {
  expectFast(`L.clipLossSync(view(${B20}, 1), view(${B20}, 1), { logitScale: 1 })`,
    'ERR_VLK_OUT_OF_MEMORY', /clipLoss: the B x B similarity scratch/, /3 x 1048576 x 1048576 x 4 bytes = 13194139533312 bytes/);
});

Limits('memoryInfoNceSync with B = 2^20: ERR_VLK_OUT_OF_MEMORY naming the B x B logits', () => {
  expectFast(`L.memoryInfoNceSync(view(${B20}, 1), view(${B20}, 1), view(4, 1))`,
    'ERR_VLK_OUT_OF_MEMORY', /memoryInfoNce: the B x B in-batch logits/, /1048576 x 1048576/);
});

Limits('memoryInfoNceSync with B x K = 2^16 x 2^24: ERR_VLK_OUT_OF_MEMORY naming the B x K logits', () => {
  expectFast(`L.memoryInfoNceSync(view(2 ** 16, 1), view(2 ** 16, 1), view(2 ** 24, 1))`,
    'ERR_VLK_OUT_OF_MEMORY', /memoryInfoNce: the B x K bank logits/, /65536 x 16777216/);
});

Limits('multiQuerySearchSync rrf with depth 2^22 over 2^16 queries: ERR_VLK_OUT_OF_MEMORY naming depth', () => {
  expectFast(`L.multiQuerySearchSync(view(2 ** 16, 1), view(2 ** 22, 1), { rewrites: 1, k: 1, fusion: 'rrf', depth: 2 ** 22 })`,
    'ERR_VLK_OUT_OF_MEMORY', /top-depth lists/, /65536 x 4194304 x 8 bytes/);
});

Limits('new MemoryBank({ size: 2^30, dim: 2^10 }): ERR_VLK_OUT_OF_MEMORY naming size x dim and the bytes', () => {
  expectFast(`new L.MemoryBank({ size: 2 ** 30, dim: 2 ** 10 })`,
    'ERR_VLK_OUT_OF_MEMORY', /memory bank \(size x dim/, /1073741824 x 1024 x 4 bytes = \d+ bytes, more than this machine's memory/);
});

Limits('new MemoryBank({ size: 2^52, dim: 2^52 }): ERR_VLK_OUT_OF_MEMORY, size x dim overflows 64 bits', () => {
  expectFast(`new L.MemoryBank({ size: 2 ** 52, dim: 2 ** 52 })`,
    'ERR_VLK_OUT_OF_MEMORY', /4503599627370496 x 4503599627370496 x 4 bytes overflows 64-bit size arithmetic/);
});

Limits('new CombinerTrainer with dim = projection = hidden = 2^20: ERR_VLK_OUT_OF_MEMORY naming the parameters', () => {
  expectFast(`new L.CombinerTrainer({ dim: 2 ** 20, projection: 2 ** 20, hidden: 2 ** 20 })`,
    'ERR_VLK_OUT_OF_MEMORY', /combiner weights \(7696587685889 parameters/, /dim 1048576, projection 1048576, hidden 1048576/);
});

Limits('CombinerTrainer.fit with batchSize 2^19 of dim 1: ERR_VLK_OUT_OF_MEMORY naming the B x B logits', () => {
  const n = 2 ** 19;
  expectFast(`new L.CombinerTrainer({ dim: 1, projection: 1, hidden: 1, batchSize: ${n} })` +
    `.fit({ image: view(${n}, 1), text: view(${n}, 1), target: view(${n}, 1) }, { epochs: 1 })`,
    'ERR_VLK_OUT_OF_MEMORY', /train step: the B x B logits/, /2 x 524288 x 524288 x 4 bytes/);
});

Limits('scanRelevanceSync with maxWords 2^24 against 2^16 regions: ERR_VLK_OUT_OF_MEMORY naming the block', () => {
  expectFast(`L.scanRelevanceSync({ words: { data: ones(2 ** 24), dims: [1, 2 ** 24, 1] }, wordLengths: new Int32Array([1]), ` +
    `regions: { data: ones(2 ** 16), dims: [2 ** 16, 1, 1] } })`,
    'ERR_VLK_OUT_OF_MEMORY', /scanRelevance: the word-region similarity block/, /16777216 x 65536 x 4 bytes/);
});

Limits('gridOrder with a 200000 x 1 grid: ERR_VLK_OUT_OF_MEMORY naming the pair count', () => {
  expectFast(`(() => { const r = new Float64Array(200000).map((_, i) => 200000 - i); return L.gridOrder(r, r, { u: 200000, v: 1, stride: 1 }); })()`,
    'ERR_VLK_OUT_OF_MEMORY', /pairs: a 200000 x 1 grid has 19999900000 ordered pairs \(159999200000 bytes\)/);
});

// The binding re-checks every spec length: a product of spec sizes that overflows int64 must not
// wrap (2^32 + 1 by 2^32 - 1 wrapped to -1, which a length check read as "any length").
Limits('binding clipLossSync with b x d = (2^32 + 1) x (2^32 - 1): ERR_VLK_SHAPE, the product overflows', () => {
  expectFast(`L.binding.clipLossSync({ b: 2 ** 32 + 1, d: 2 ** 32 - 1, images: new Float32Array(4), texts: new Float32Array(4), ` +
    `logitScale: 1, maxScale: 100, labelSmoothing: 0, normalize: true, grads: false })`,
    'ERR_VLK_SHAPE', /images: length 4, expected a product of the sizes that overflows 64-bit arithmetic/);
});

Limits('binding graphRowTopkMaskSync with rows x cols = (2^32 + 1) x (2^32 - 1): ERR_VLK_SHAPE naming scores', () => {
  expectFast(`L.binding.graphRowTopkMaskSync({ rows: 2 ** 32 + 1, cols: 2 ** 32 - 1, scores: new Float32Array(4), k: 1, fraction: 0 })`,
    'ERR_VLK_SHAPE', /scores: length 4, expected a product of the sizes that overflows/);
});

Limits('binding graphGcnSync with n x n = 2^32 x 2^32: ERR_VLK_SHAPE naming adjacency', () => {
  expectFast(`L.binding.graphGcnSync({ n: 2 ** 32, din: 1, dout: 1, adjacency: new Float32Array(0), input: new Float32Array(0), ` +
    `weight: new Float32Array(1), slope: 0 })`,
    'ERR_VLK_SHAPE', /adjacency: length 0, expected a product of the sizes that overflows/);
});

// A control: the same probe reports success for a call that fits, so the cases above cannot pass
// because the child failed for some unrelated reason.
Limits('control: a small twoHopLossSync succeeds through the same probe', () => {
  const r = probe(`L.twoHopLossSync({ query: view(4, 2), targetTokens: { data: ones(8), dims: [4, 1, 2] } })`);
  assert.ok(r.ok, r.message);
});

Limits.run();
