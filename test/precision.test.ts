// Reduced-precision scans on the CPU (test/precision.test.ts): search and tokenMaxSearch with
// precision 'bf16' (and 'i8') return exactly what precision 'exact' returns (indices, scores bit for
// bit, counts) on fresh random inputs at awkward sizes (1, 7, 513 items; 1, 3, 32 tokens; k = 1, 10,
// N), every metric, with exclude and allow, sync and async, galleries past the one-shot path's
// block size; NaN in the gallery is ERR_VLK_NON_FINITE, an unknown precision (or 'bf16' with device
// 'auto', 'i8' with 'cuda') ERR_VLK_INVALID_ARG; an AbortSignal cancels a running bf16 search.
// Inputs are drawn from a new seed each run (VLK_TEST_SEED=<n> replays one; messages name it).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { binding, search, searchSync, tokenMaxSearch, tokenMaxSearchSync, VlkError } from './helpers/lib';
import type { SearchResult } from './helpers/lib';
import { gaussianMatrix, rng, uniformMatrix } from './helpers/random';
import { assertSameResult } from './helpers/compare';
import { timeScale } from './helpers/sanitized';

type Metric = 'ip' | 'cosine' | 'l2';
const METRICS: Metric[] = ['ip', 'cosine', 'l2'];
const SEED = Number(process.env.VLK_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
let seed = SEED;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function same(got: SearchResult, want: SearchResult, what: string): void {
  assertSameResult(got, want, `${what} (VLK_TEST_SEED=${SEED})`);
  assert.equal(Array.from(got.counts), Array.from(want.counts), `${what}: counts (VLK_TEST_SEED=${SEED})`);
}

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err: any) {
    assert.ok(err instanceof VlkError, `a VlkError, got ${err?.constructor?.name}: ${err?.message}`);
    return err.code;
  }
  return undefined;
}

async function rejection(p: Promise<unknown>): Promise<any> {
  return p.then(
    () => {
      throw new Error('expected a rejection, got a result');
    },
    (err) => err,
  );
}

// ---------------------------------------------------------------------------------------------
const Equal = suite("precision 'bf16' / 'i8' equal 'exact'");

Equal('search and tokenMaxSearch: 1, 7, 513 items x 1, 3, 32 tokens, k = 1, 10, N, every metric, exclude', async () => {
  let cases = 0;
  for (const items of [1, 7, 513]) {
    for (const tokens of [1, 3, 32]) {
      const d = [3, 17, 130][cases % 3];
      const nq = items === 513 ? 9 : 20;
      const g = gaussianMatrix(items * tokens, d, seed++);
      if (items >= 7) g.copyWithin(4 * tokens * d, tokens * d, 2 * tokens * d); // item 4 = item 1: ties
      const q = gaussianMatrix(nq, d, seed++);
      q.set(g.subarray(0, d), 0); // query 0 on the first token row
      const r = rng(seed++);
      const exclude = Int32Array.from({ length: nq }, (_, i) => (i % 3 === 2 ? -1 : Math.floor(r() * items)));
      for (const metric of METRICS) {
        for (const k of [...new Set([1, Math.min(10, items), items])]) {
          for (const withExclude of [false, true]) {
            const what = `${items} items x ${tokens} tokens x ${d}, ${metric}, k ${k}${withExclude ? ', exclude' : ''}`;
            const base = { k, dim: d, tokens, metric, ...(withExclude ? { exclude } : {}) };
            const want = tokenMaxSearchSync(q, g, base);
            same(tokenMaxSearchSync(q, g, { ...base, precision: 'bf16' }), want, `${what}: tokenMaxSearchSync bf16`);
            same(tokenMaxSearchSync(q, g, { ...base, precision: 'i8' }), want, `${what}: tokenMaxSearchSync i8`);
            if (tokens === 1) {
              const { tokens: _t, ...plain } = base;
              same(searchSync(q, g, { ...plain, precision: 'bf16' }), want, `${what}: searchSync bf16`);
              same(await search(q, g, { ...plain, precision: 'bf16', device: 'cpu' }), want, `${what}: search bf16`);
            } else {
              same(
                await tokenMaxSearch(q, { data: g, dims: [items, tokens, d] }, { ...base, tokens: undefined, precision: 'bf16' }),
                want,
                `${what}: tokenMaxSearch bf16 (tensor form)`,
              );
            }
            cases++;
          }
        }
      }
    }
  }
  assert.is(cases, 3 * (1 + 2 + 3) * 3 * 2);
});

Equal('k > N with clamp, an allow-set, CSR exclusions, 1 thread', async () => {
  const items = 300;
  const tokens = 4;
  const d = 24;
  const g = uniformMatrix(items * tokens, d, seed++);
  const q = uniformMatrix(11, d, seed++);
  const allow = Int32Array.from({ length: 100 }, (_, j) => 3 * j);
  const offsets = Int32Array.from({ length: 12 }, (_, i) => 2 * i);
  const rows = Int32Array.from({ length: 22 }, (_, j) => (j * 37) % items);
  for (const metric of METRICS) {
    const base = { k: 10, dim: d, tokens, metric, allow, exclude: { offsets, rows } };
    const want = tokenMaxSearchSync(q, g, base);
    for (const precision of ['bf16', 'i8'] as const) {
      same(tokenMaxSearchSync(q, g, { ...base, precision }), want, `${metric} ${precision} filters`);
      same(await tokenMaxSearch(q, g, { ...base, precision, threads: 1 }), want, `${metric} ${precision} 1 thread`);
      const clamped = { k: items + 5, clamp: true, dim: d, tokens, metric };
      same(tokenMaxSearchSync(q, g, { ...clamped, precision }), tokenMaxSearchSync(q, g, clamped), `${metric} ${precision} clamp`);
    }
  }
});

Equal('galleries past the one-shot block size (65,536 rows): blocks merge to the same result', async () => {
  const d = 6;
  for (const [items, tokens] of [[70_000, 1], [2_200, 32]]) {
    const g = gaussianMatrix(items * tokens, d, seed++);
    g.copyWithin((items - 1) * tokens * d, 5 * tokens * d, 6 * tokens * d); // the last item = item 5
    const q = gaussianMatrix(7, d, seed++);
    q.set(g.subarray(5 * tokens * d, 5 * tokens * d + d), 0);
    const exclude = Int32Array.from({ length: 7 }, (_, i) => (i * 9973) % items);
    for (const metric of METRICS) {
      const base = { k: 25, dim: d, tokens, metric, exclude };
      const want = tokenMaxSearchSync(q, g, base);
      same(await tokenMaxSearch(q, g, { ...base, precision: 'bf16' }), want, `${items}x${tokens} ${metric} bf16`);
      same(tokenMaxSearchSync(q, g, { ...base, precision: 'i8' }), want, `${items}x${tokens} ${metric} i8`);
      if (metric === 'l2') {
        // Query 0 is on item 5, duplicated by the last item (another block): the lower one first.
        assert.equal([want.indices[0], want.indices[1]], [5, items - 1]);
      }
    }
  }
});

Equal.run();

// ---------------------------------------------------------------------------------------------
const Errors = suite('errors');

Errors('NaN or Infinity in the gallery is ERR_VLK_NON_FINITE naming the row and column', async () => {
  const d = 8;
  const g = gaussianMatrix(600, d, seed++);
  const q = gaussianMatrix(3, d, seed++);
  g[417 * d + 3] = NaN;
  for (const precision of ['bf16', 'i8'] as const) {
    for (const tokens of [1, 3]) {
      try {
        tokenMaxSearchSync(q, g, { k: 5, dim: d, tokens, precision });
        assert.unreachable('should throw');
      } catch (err: any) {
        assert.ok(err instanceof VlkError, String(err));
        assert.is(err.code, 'ERR_VLK_NON_FINITE');
        assert.match(err.message, /gallery: row 417, column 3 is NaN/);
      }
      const err = await rejection(search(q, g, { k: 5, dim: d, tokens, precision }));
      assert.is(err.code, 'ERR_VLK_NON_FINITE');
    }
  }
  g[417 * d + 3] = 0;
  g[5 * d] = -Infinity;
  assert.is(code(() => searchSync(q, g, { k: 5, dim: d, precision: 'bf16' })), 'ERR_VLK_NON_FINITE');
  // The same message as precision 'exact'.
  let exact = '';
  let bf16 = '';
  try {
    searchSync(q, g, { k: 5, dim: d });
  } catch (err: any) {
    exact = err.message;
  }
  try {
    searchSync(q, g, { k: 5, dim: d, precision: 'bf16' });
  } catch (err: any) {
    bf16 = err.message;
  }
  assert.is(bf16, exact);
});

Errors('an unknown precision is ERR_VLK_INVALID_ARG (lib and binding); bf16 with device auto, i8 with cuda too', async () => {
  const d = 4;
  const g = gaussianMatrix(20, d, seed++);
  const q = gaussianMatrix(2, d, seed++);
  for (const precision of ['fp16', 'BF16', 'int8', 16, true]) {
    assert.is(code(() => searchSync(q, g, { k: 3, dim: d, precision: precision as any })), 'ERR_VLK_INVALID_ARG', String(precision));
    assert.is(code(() => tokenMaxSearchSync(q, g, { k: 3, dim: d, tokens: 2, precision: precision as any })), 'ERR_VLK_INVALID_ARG');
    assert.is((await rejection(search(q, g, { k: 3, dim: d, precision: precision as any }))).code, 'ERR_VLK_INVALID_ARG');
  }
  try {
    searchSync(q, g, { k: 3, dim: d, precision: 'fp16' as any });
  } catch (err: any) {
    assert.match(err.message, /options\.precision: expected 'exact', 'bf16' or 'i8', got 'fp16'/);
  }
  assert.is(code(() => searchSync(q, g, { k: 3, dim: d, precision: 'bf16', device: 'auto' })), 'ERR_VLK_INVALID_ARG');
  assert.is(code(() => searchSync(q, g, { k: 3, dim: d, precision: 'i8', device: 'auto' })), 'ERR_VLK_INVALID_ARG');
  assert.is(code(() => searchSync(q, g, { k: 3, dim: d, precision: 'i8', device: 'cuda' })), 'ERR_VLK_INVALID_ARG');
  // The binding checks the same without lib in front.
  const view = (data: Float32Array, rows: number) => ({ data, rows, cols: d });
  for (const [extra, re] of [
    [{ precision: 'fp16' }, /'exact', 'bf16' or 'i8'/],
    [{ precision: 'bf16', device: 'auto' }, /'auto'/],
    [{ precision: 'i8', device: 'cuda' }, /'i8' precision is for device 'cpu'/],
  ] as const) {
    try {
      binding.searchSync(view(q, 2), view(g, 20), { k: 3, metric: 'ip', ...extra });
      assert.unreachable('binding should throw');
    } catch (err: any) {
      assert.is(err.code, 'ERR_VLK_INVALID_ARG', err.message);
      assert.match(err.message, re);
    }
  }
  // The binding computes bf16 itself (lib passes the option through).
  const want = binding.searchSync(view(q, 2), view(g, 20), { k: 3, metric: 'l2' });
  same(binding.searchSync(view(q, 2), view(g, 20), { k: 3, metric: 'l2', precision: 'bf16' }), want, 'binding bf16');
});

Errors.run();

// ---------------------------------------------------------------------------------------------
const Async = suite('asynchronous bf16 search');

Async('an AbortSignal cancels a running bf16 search promptly; an aborted signal rejects at once', async () => {
  const d = 128;
  const g = uniformMatrix(100_000, d, seed++);
  const q = g.subarray(0, 20_000 * d); // about a second or more: 20,000 x 100,000 x 128
  const pre = await rejection(search(q, g, { k: 10, dim: d, precision: 'bf16', signal: AbortSignal.abort() }));
  assert.is(pre.name, 'AbortError');
  assert.is(pre.code, 'ABORT_ERR');
  const ac = new AbortController();
  const reason = new Error('stop');
  const t0 = performance.now();
  const p = rejection(search(q, g, { k: 10, dim: d, tokens: 4, precision: 'bf16', signal: ac.signal }));
  await sleep(30);
  const tAbort = performance.now();
  ac.abort(reason);
  const err = await p;
  const after = performance.now() - tAbort;
  if (err instanceof Error && err.name !== 'AbortError') throw err;
  assert.is(err.name, 'AbortError');
  assert.ok(err.cause === reason, 'cause is the reason');
  assert.ok(after < 300 * timeScale, `rejected ${after.toFixed(1)} ms after the abort (started ${(tAbort - t0).toFixed(0)} ms before)`);
  // Not aborted: the same result as exact, and the pool is free again.
  const small = g.subarray(0, 50 * d);
  same(await search(small, g, { k: 10, dim: d, precision: 'bf16', signal: new AbortController().signal }),
    searchSync(small, g, { k: 10, dim: d }), 'async bf16 with a live signal');
});

Async.run();
