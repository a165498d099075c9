// Bad inputs (test/errors.test.ts): each gets a VlkError with the right code and a message naming
// the argument and the numbers, thrown by searchSync and delivered by search as a rejection (never
// a synchronous throw); the lib's code list equals the binding's; no input crashes the process.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { binding, errorCodes, search, searchSync, VlkError } from './helpers/lib';
import { gaussianMatrix, rng } from './helpers/random';

type Case = {
  name: string;
  code: string;
  /** Each must match the message. */
  message: RegExp[];
  make: () => [unknown, unknown, Record<string, unknown>];
};

const D = 4;
const q2 = () => gaussianMatrix(2, D, 1); // 2 x 4
const g7 = () => gaussianMatrix(7, D, 2); // 7 x 4

function detached(length: number): Float32Array {
  const a = new Float32Array(length);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}

const CASES: Case[] = [
  // ERR_VLK_TYPE
  { name: 'queries is a Float64Array', code: 'ERR_VLK_TYPE', message: [/queries/, /Float64Array/], make: () => [new Float64Array(8), g7(), { k: 1, dim: D }] },
  { name: 'gallery is null', code: 'ERR_VLK_TYPE', message: [/gallery/, /null/], make: () => [q2(), null, { k: 1, dim: D }] },
  { name: 'queries is a string', code: 'ERR_VLK_TYPE', message: [/queries/], make: () => [' 1 2 3 4', g7(), { k: 1, dim: D }] },
  { name: 'gallery is a plain array', code: 'ERR_VLK_TYPE', message: [/gallery/], make: () => [q2(), Array.from(g7()), { k: 1, dim: D }] },
  { name: 'queries is undefined', code: 'ERR_VLK_TYPE', message: [/queries/], make: () => [undefined, g7(), { k: 1, dim: D }] },
  { name: 'view data is a Float64Array', code: 'ERR_VLK_TYPE', message: [/gallery/, /data/], make: () => [q2(), { data: new Float64Array(28), rows: 7, cols: D }, { k: 1, dim: D }] },
  { name: 'view data is a plain array', code: 'ERR_VLK_TYPE', message: [/queries/, /data/], make: () => [{ data: [1, 2, 3, 4], dims: [1, D] }, g7(), { k: 1, dim: D }] },
  { name: 'gallery is an Int32Array', code: 'ERR_VLK_TYPE', message: [/gallery/], make: () => [q2(), new Int32Array(28), { k: 1, dim: D }] },
  { name: 'options is missing', code: 'ERR_VLK_TYPE', message: [/options/], make: () => [q2(), g7(), undefined as any] },
  // ERR_VLK_DIM_MISMATCH
  { name: 'queries 2 x 4 vs gallery 3 x 5', code: 'ERR_VLK_DIM_MISMATCH', message: [/4/, /5/, /queries|gallery/], make: () => [{ data: new Float32Array(8), rows: 2, cols: 4 }, { data: new Float32Array(15), rows: 3, cols: 5 }, { k: 1 }] },
  { name: 'view cols 5 vs options.dim 4', code: 'ERR_VLK_DIM_MISMATCH', message: [/gallery/, /5/, /4/], make: () => [q2(), { data: new Float32Array(15), rows: 3, cols: 5 }, { k: 1, dim: 4 }] },
  { name: 'plain gallery length 30 not a multiple of dim 4', code: 'ERR_VLK_DIM_MISMATCH', message: [/gallery/, /30/, /4/], make: () => [q2(), new Float32Array(30), { k: 1, dim: D }] },
  // ERR_VLK_SHAPE
  { name: 'view length 12 != rows 3 x cols 5', code: 'ERR_VLK_SHAPE', message: [/queries/, /12/, /3/, /5/], make: () => [{ data: new Float32Array(12), rows: 3, cols: 5 }, { data: new Float32Array(10), rows: 2, cols: 5 }, { k: 1 }] },
  { name: 'negative rows', code: 'ERR_VLK_SHAPE', message: [/gallery/, /rows/, /-1/], make: () => [q2(), { data: new Float32Array(4), rows: -1, cols: 4 }, { k: 1, dim: D }] },
  { name: 'non-integer cols', code: 'ERR_VLK_SHAPE', message: [/queries/, /cols/, /1\.5/], make: () => [{ data: new Float32Array(3), rows: 2, cols: 1.5 }, g7(), { k: 1 }] },
  { name: 'dims of length 3', code: 'ERR_VLK_SHAPE', message: [/gallery/, /dims/, /3/], make: () => [q2(), { data: new Float32Array(28), dims: [7, 2, 2] }, { k: 1, dim: D }] },
  { name: 'rows x cols overflows', code: 'ERR_VLK_SHAPE', message: [/gallery/], make: () => [q2(), { data: new Float32Array(8), rows: 2 ** 40, cols: 2 ** 20 }, { k: 1, dim: D }] },
  { name: 'rows is NaN', code: 'ERR_VLK_SHAPE', message: [/queries/, /rows/, /NaN/], make: () => [{ data: new Float32Array(8), rows: NaN, cols: 4 }, g7(), { k: 1 }] },
  { name: 'dims[0] is a string', code: 'ERR_VLK_SHAPE', message: [/queries/, /dims/], make: () => [{ data: new Float32Array(8), dims: ['2', 4] }, g7(), { k: 1 }] },
  // ERR_VLK_INVALID_K
  { name: 'k = 0', code: 'ERR_VLK_INVALID_K', message: [/\bk\b/, /\b0\b/, /7/], make: () => [q2(), g7(), { k: 0, dim: D }] },
  { name: 'k = -1', code: 'ERR_VLK_INVALID_K', message: [/\bk\b/, /-1/], make: () => [q2(), g7(), { k: -1, dim: D }] },
  { name: 'k = 1.5', code: 'ERR_VLK_INVALID_K', message: [/\bk\b/, /1\.5/], make: () => [q2(), g7(), { k: 1.5, dim: D }] },
  { name: 'k = NaN', code: 'ERR_VLK_INVALID_K', message: [/\bk\b/, /NaN/], make: () => [q2(), g7(), { k: NaN, dim: D }] },
  { name: 'k = Infinity with clamp', code: 'ERR_VLK_INVALID_K', message: [/\bk\b/, /Infinity/], make: () => [q2(), g7(), { k: Infinity, dim: D, clamp: true }] },
  { name: 'k = 8 > N = 7 without clamp', code: 'ERR_VLK_INVALID_K', message: [/\bk\b/, /8/, /7/], make: () => [q2(), g7(), { k: 8, dim: D }] },
  { name: 'k is a string', code: 'ERR_VLK_INVALID_K', message: [/\bk\b/], make: () => [q2(), g7(), { k: '3', dim: D }] },
  // ERR_VLK_NON_FINITE
  { name: 'NaN in queries', code: 'ERR_VLK_NON_FINITE', message: [/queries/], make: () => { const q = q2(); q[6] = NaN; return [q, g7(), { k: 1, dim: D }]; } },
  { name: 'Infinity in gallery', code: 'ERR_VLK_NON_FINITE', message: [/gallery/], make: () => { const g = g7(); g[13] = Infinity; return [q2(), g, { k: 1, dim: D }]; } },
  { name: '-Infinity in gallery (l2)', code: 'ERR_VLK_NON_FINITE', message: [/gallery/], make: () => { const g = g7(); g[0] = -Infinity; return [q2(), g, { k: 3, dim: D, metric: 'l2' }]; } },
  { name: 'NaN in queries (cosine)', code: 'ERR_VLK_NON_FINITE', message: [/queries/], make: () => { const q = q2(); q[0] = NaN; return [q, g7(), { k: 3, dim: D, metric: 'cosine' }]; } },
  {
    name: 'NaN in the last element of a 4097-row gallery',
    code: 'ERR_VLK_NON_FINITE',
    message: [/gallery/, /4096|65535/],
    make: () => { const g = gaussianMatrix(4097, 16, 3); g[g.length - 1] = NaN; return [gaussianMatrix(3, 16, 4), g, { k: 10, dim: 16 }]; },
  },
  ...(['ip', 'cosine', 'l2'] as const).map((metric) => ({
    name: `finite inputs whose products overflow float32 (${metric})`,
    code: 'ERR_VLK_NON_FINITE',
    message: [] as RegExp[],
    make: (): [unknown, unknown, Record<string, unknown>] => [
      new Float32Array(2 * D).fill(3e30),
      new Float32Array(7 * D).fill(-3e30),
      { k: 2, dim: D, metric },
    ],
  })),
  // ERR_VLK_EMPTY
  { name: 'Q = 0', code: 'ERR_VLK_EMPTY', message: [/queries/, /0/], make: () => [{ data: new Float32Array(0), rows: 0, cols: D }, g7(), { k: 1, dim: D }] },
  { name: 'N = 0', code: 'ERR_VLK_EMPTY', message: [/gallery/, /0/], make: () => [q2(), { data: new Float32Array(0), dims: [0, D] }, { k: 1, dim: D }] },
  { name: 'D = 0', code: 'ERR_VLK_EMPTY', message: [/queries|gallery/, /0/], make: () => [{ data: new Float32Array(0), rows: 2, cols: 0 }, { data: new Float32Array(0), rows: 7, cols: 0 }, { k: 1 }] },
  { name: 'empty plain Float32Array', code: 'ERR_VLK_EMPTY', message: [/queries/], make: () => [new Float32Array(0), g7(), { k: 1, dim: D }] },
  // ERR_VLK_INVALID_ARG
  { name: "metric 'dot'", code: 'ERR_VLK_INVALID_ARG', message: [/metric/, /dot/], make: () => [q2(), g7(), { k: 1, dim: D, metric: 'dot' }] },
  { name: 'threads = 0', code: 'ERR_VLK_INVALID_ARG', message: [/threads/, /\b0\b/], make: () => [q2(), g7(), { k: 1, dim: D, threads: 0 }] },
  { name: 'threads = 1.5', code: 'ERR_VLK_INVALID_ARG', message: [/threads/, /1\.5/], make: () => [q2(), g7(), { k: 1, dim: D, threads: 1.5 }] },
  { name: 'threads = -2', code: 'ERR_VLK_INVALID_ARG', message: [/threads/, /-2/], make: () => [q2(), g7(), { k: 1, dim: D, threads: -2 }] },
  { name: 'missing dim with a plain Float32Array', code: 'ERR_VLK_INVALID_ARG', message: [/dim/], make: () => [q2(), g7(), { k: 1 }] },
  { name: 'detached queries buffer', code: 'ERR_VLK_INVALID_ARG', message: [/queries/, /detached/], make: () => [detached(8), g7(), { k: 1, dim: D }] },
  { name: 'detached gallery buffer in a view', code: 'ERR_VLK_INVALID_ARG', message: [/gallery/, /detached/], make: () => [q2(), { data: detached(28), rows: 7, cols: D }, { k: 1, dim: D }] },
];

function checkError(err: any, c: Case, how: string): void {
  assert.ok(err instanceof VlkError, `${how}: expected a VlkError, got ${err?.constructor?.name}: ${err?.message}`);
  assert.ok(err instanceof Error, `${how}: an Error`);
  assert.is(err.name, 'VlkError', `${how}: name`);
  assert.is(err.code, c.code, `${how}: code (message: ${err.message})`);
  for (const re of c.message) assert.match(err.message, re, `${how}: message "${err.message}" should match ${re}`);
}

// ---------------------------------------------------------------------------------------------
const Bad = suite('bad inputs: sync throws, async rejects');

for (const c of CASES) {
  Bad(`${c.code}: ${c.name}`, async () => {
    const [q, g, o] = c.make();
    let thrown: unknown;
    try {
      searchSync(q as any, g as any, o as any);
    } catch (err) {
      thrown = err;
    }
    assert.ok(thrown !== undefined, 'searchSync should throw');
    checkError(thrown, c, 'searchSync');

    const [q2_, g2_, o2_] = c.make();
    let promise: Promise<unknown>;
    try {
      promise = search(q2_ as any, g2_ as any, o2_ as any);
    } catch (err: any) {
      throw new Error(`search threw synchronously instead of rejecting: ${err?.code} ${err?.message}`);
    }
    assert.ok(promise instanceof Promise, 'search returns a Promise');
    const rejection = await promise.then(
      () => undefined,
      (err) => err ?? new Error('rejected with a nullish value'),
    );
    assert.ok(rejection !== undefined, 'search should reject');
    checkError(rejection, c, 'search');
  });
}

Bad.run();

// ---------------------------------------------------------------------------------------------
const Codes = suite('error codes and error objects');

Codes('errorCodes equals binding._errorCodes()', () => {
  assert.equal([...errorCodes], binding._errorCodes());
  assert.not.ok(errorCodes.includes('ERR_VLK_LOAD' as any), 'ERR_VLK_LOAD is loader-only');
  for (const code of ['ERR_VLK_TYPE', 'ERR_VLK_DIM_MISMATCH', 'ERR_VLK_SHAPE', 'ERR_VLK_INVALID_K', 'ERR_VLK_NON_FINITE', 'ERR_VLK_EMPTY', 'ERR_VLK_INVALID_ARG', 'ERR_VLK_UNSUPPORTED_ISA', 'ERR_VLK_OUT_OF_MEMORY', 'ERR_VLK_INTERNAL']) {
    assert.ok((errorCodes as readonly string[]).includes(code), `errorCodes has ${code}`);
  }
});

Codes('every code the cases above produce is in errorCodes', () => {
  for (const c of CASES) assert.ok((errorCodes as readonly string[]).includes(c.code), c.code);
});

Codes('a native-detected error carries the caller\'s stack', () => {
  const g = g7();
  g[3] = NaN;
  try {
    searchSync(q2(), g, { k: 1, dim: D });
    assert.unreachable('should throw');
  } catch (err: any) {
    assert.instance(err, VlkError);
    assert.is(err.code, 'ERR_VLK_NON_FINITE');
    assert.match(String(err.stack), /errors\.test\.ts/, `stack should show the test file:\n${err.stack}`);
  }
});

Codes('the binding itself rejects bad input with the same codes (no lib in front)', () => {
  const attempts: Array<[string, () => unknown]> = [
    ['ERR_VLK_TYPE', () => binding.searchSync({ data: new Float64Array(8), rows: 2, cols: 4 }, { data: g7(), rows: 7, cols: 4 }, { k: 1 })],
    ['ERR_VLK_SHAPE', () => binding.searchSync({ data: new Float32Array(8), rows: 3, cols: 4 }, { data: g7(), rows: 7, cols: 4 }, { k: 1 })],
    ['ERR_VLK_INVALID_K', () => binding.searchSync({ data: q2(), rows: 2, cols: 4 }, { data: g7(), rows: 7, cols: 4 }, { k: 8 })],
    ['ERR_VLK_INVALID_ARG', () => binding.searchSync({ data: q2(), rows: 2, cols: 4 }, { data: g7(), rows: 7, cols: 4 }, { k: 1, metric: 'dot' })],
    ['ERR_VLK_SHAPE', () => binding.searchSync({ data: q2(), rows: -2, cols: -4 }, { data: g7(), rows: 7, cols: 4 }, { k: 1 })],
    ['ERR_VLK_TYPE', () => binding.searchSync(null, null, null)],
  ];
  for (const [code, fn] of attempts) {
    try {
      fn();
      assert.unreachable(`binding should throw ${code}`);
    } catch (err: any) {
      assert.is(err.code, code, `binding: ${err.message}`);
    }
  }
});

Codes.run();

// ---------------------------------------------------------------------------------------------
const Fuzz = suite('no input crashes the process');

function pick<T>(u: () => number, xs: T[]): T {
  return xs[Math.floor(u() * xs.length)];
}

Fuzz('2600 random and near-valid calls either succeed with a consistent result or throw VlkError', async () => {
  const u = rng(4242);
  const sab = new Float32Array(new SharedArrayBuffer(4 * 12)).fill(0.5);
  const matrices = (): unknown[] => [
    new Float32Array(12).fill(1),
    new Float32Array(0),
    gaussianMatrix(3, 4, 9),
    gaussianMatrix(8, 3, 10).subarray(1, 13),
    sab,
    new Float64Array(12),
    null,
    undefined,
    0,
    'x',
    {},
    [],
    { data: new Float32Array(12), rows: 3, cols: 4 },
    { data: new Float32Array(12), rows: 4, cols: 3 },
    { data: new Float32Array(12), rows: 2 ** 31, cols: 2 },
    { data: new Float32Array(12), rows: -3, cols: -4 },
    { data: new Float32Array(12), rows: 3 },
    { data: new Float32Array(12), dims: [3, 4] },
    { data: new Float32Array(12), dims: [3] },
    { data: new Float32Array(12), dims: null },
    { data: new Float32Array(12), dims: [Infinity, 0] },
    { data: new Float32Array([1, NaN, 3, 4]), rows: 1, cols: 4 },
    { data: null, rows: 1, cols: 4 },
  ];
  const options = (): unknown => {
    if (u() < 0.03) return pick(u, [null, 3, 'k', [], undefined]);
    const o: Record<string, unknown> = {};
    o.k = pick(u, [1, 2, 3, 4, 12, 0, -1, 2 ** 31, 2 ** 53, 1e300, NaN, '3', null, undefined, 1.5]);
    if (u() < 0.8) o.dim = pick(u, [4, 3, 1, 12, 0, -1, 2 ** 31, NaN, 1.5, '4', null]);
    if (u() < 0.6) o.metric = pick(u, ['ip', 'cosine', 'l2', 'dot', '', 3, null]);
    if (u() < 0.4) o.threads = pick(u, [1, 2, 3, 64, 1e9, 2 ** 31, 0, -1, NaN, Infinity, '2', null]);
    if (u() < 0.3) o.clamp = pick(u, [true, false, 'yes', 1, null]);
    return o;
  };
  let ok = 0;
  let failed = 0;
  for (let i = 0; i < 2000; i++) {
    const q = pick(u, matrices());
    const g = pick(u, matrices());
    const o = options();
    const asyncCall = i % 10 === 0;
    try {
      const r = asyncCall ? await search(q as any, g as any, o as any) : searchSync(q as any, g as any, o as any);
      assert.ok(r.indices instanceof Int32Array && r.scores instanceof Float32Array, 'result types');
      assert.is(r.indices.length, r.k * r.count, 'indices length');
      assert.is(r.scores.length, r.k * r.count, 'scores length');
      ok++;
    } catch (err: any) {
      if (!(err instanceof VlkError)) {
        throw new Error(
          `call ${i} threw ${err?.constructor?.name} (${err?.message}) instead of a VlkError; ` +
            `options ${JSON.stringify(o)}`,
        );
      }
      assert.ok((errorCodes as readonly string[]).includes(err.code), `known code ${err.code}`);
      failed++;
    }
  }
  // Near-valid calls: good matrices (3 x 4), with one option at a time off its range.
  const good = (): unknown[] => [
    new Float32Array(12).fill(0.25),
    gaussianMatrix(3, 4, 11),
    { data: gaussianMatrix(3, 4, 12), rows: 3, cols: 4 },
    { data: gaussianMatrix(3, 4, 13), dims: [3, 4] },
    gaussianMatrix(5, 4, 14).subarray(4, 16),
    sab,
  ];
  for (let i = 0; i < 600; i++) {
    const o: Record<string, unknown> = { k: pick(u, [1, 2, 3, 3, 4]), dim: 4 };
    if (u() < 0.7) o.metric = pick(u, ['ip', 'cosine', 'l2', 'l2', 'L2']);
    if (u() < 0.5) o.threads = pick(u, [1, 2, 3, 7, 64, 1e9, 0]);
    if (u() < 0.3) o.clamp = pick(u, [true, false]);
    try {
      const r = i % 5 === 0 ? await search(pick(u, good()) as any, pick(u, good()) as any, o as any) : searchSync(pick(u, good()) as any, pick(u, good()) as any, o as any);
      assert.is(r.indices.length, r.k * r.count, 'indices length');
      for (const idx of r.indices) assert.ok(idx >= 0 && idx < 3, `index ${idx} in range`);
      ok++;
    } catch (err: any) {
      if (!(err instanceof VlkError)) throw new Error(`near-valid call ${i} threw ${err?.constructor?.name}: ${err?.message}`);
      failed++;
    }
  }
  assert.ok(ok > 200, `some calls succeed (${ok})`);
  assert.ok(failed > 1000, `most calls fail (${failed})`);
});

Fuzz.run();
