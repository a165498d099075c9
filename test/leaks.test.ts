// Leak check (test/leaks.test.ts): RSS stays flat across many calls of each main API on small
// inputs, sync and async, and across FlatIndex create/close cycles. Each phase warms up, collects
// garbage and empties the block cache, then runs N more calls and must end within a stated RSS bound.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  biasedAttentionSync,
  clipLoss,
  clipLossSync,
  composeSync,
  FlatIndex,
  binding,
  mergeTopKSync,
  rankOfTargetsSync,
  readVectors,
  relevanceSync,
  releaseMemory,
  rerankSync,
  search,
  searchSync,
  writeNpy,
} from './helpers/lib';
import { gaussianMatrix } from './helpers/random';
import { sanitized } from './helpers/sanitized';
import { runNode } from './helpers/child';
import { distCjs } from './helpers/paths';

setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

// Calls per API. The issue asks for 100,000; VLK_LEAK_CALLS overrides it (e.g. a quick local run).
const N = Number(process.env.VLK_LEAK_CALLS || 100_000);
const CYCLES = 1_000;
// Allowed RSS growth per phase, measured from the warm state: glibc arenas and V8's heap settle in
// steps of a few MiB; a leak of 350 bytes a call over 100,000 calls would pass 32 MiB.
const BOUND_MB = 32;

// Garbage collection, with a turn of the event loop after each pass: Node-API finalizers (a
// FlatIndex dropped without close()) run from the loop, not inside gc().
async function settle(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    collect();
    await new Promise((resolve) => setImmediate(resolve));
  }
  releaseMemory();
  return process.memoryUsage().rss;
}

const growth: Record<string, number> = {};

/** Runs `call` `warm` times, settles, runs it `count` times, settles; returns the growth in MiB. */
async function measure(name: string, count: number, call: (i: number) => unknown | Promise<unknown>, warm = 2_000): Promise<number> {
  const batch = 64; // async calls in flight at once
  const runMany = async (n: number) => {
    for (let i = 0; i < n; ) {
      const first = call(i);
      if (first instanceof Promise) {
        const pending: Promise<unknown>[] = [first];
        for (let j = 1; j < batch && i + j < n; j++) pending.push(call(i + j) as Promise<unknown>);
        await Promise.all(pending);
        i += pending.length;
      } else {
        i++;
      }
    }
  };
  await runMany(Math.min(warm, count));
  const before = await settle();
  const t0 = performance.now();
  await runMany(count);
  const ms = performance.now() - t0;
  const after = await settle();
  const mb = (after - before) / 2 ** 20;
  growth[name] = mb;
  console.log(`  ${name}: ${count} calls in ${ms.toFixed(0)} ms, RSS ${(before / 2 ** 20).toFixed(1)} -> ${(after / 2 ** 20).toFixed(1)} MiB (${mb >= 0 ? '+' : ''}${mb.toFixed(2)} MiB)`);
  return mb;
}

/**
 * measure(), then the bound and an idle pool. Over the bound, the phase runs once more from the new
 * state: malloc can map a fresh arena for a pool thread (a one-off step of ~15 MiB, seen flat over
 * 800,000 further calls), while a leak grows again by the same amount.
 */
async function phase(name: string, count: number, call: (i: number) => unknown | Promise<unknown>, warm = 2_000): Promise<void> {
  if (sanitized) {
    // ASan's quarantine keeps freed blocks resident (up to 256 MiB), so RSS cannot show a leak here;
    // the calls still run under the sanitizer, a tenth of them.
    await measure(`${name} (${sanitized}: RSS bound not checked)`, Math.ceil(count / 10), call, 0);
    assert.is(binding.info().inFlight, 0, `${name}: calls still in flight`);
    return;
  }
  const first = await measure(name, count, call, warm);
  const mb = first < BOUND_MB ? first : await measure(`${name} (again)`, count, call, 0);
  assert.ok(mb < BOUND_MB, `${name}: RSS grew ${first.toFixed(1)} then ${mb.toFixed(1)} MiB over ${count} calls (bound ${BOUND_MB} MiB)`);
  assert.is(binding.info().inFlight, 0, `${name}: calls still in flight`);
}

// Small inputs at awkward sizes.
const d = 24;
const nq = 3;
const ng = 37;
const q = gaussianMatrix(nq, d, 1);
const g = gaussianMatrix(ng, d, 2);
const lists = Int32Array.from({ length: nq * 5 }, (_, i) => (i * 7) % ng);
const parts = [searchSync(q, g.subarray(0, 20 * d), { k: 4, dim: d }), { ...searchSync(q, g.subarray(20 * d), { k: 4, dim: d }), offset: 20 }];
const targets = Int32Array.from({ length: nq }, (_, i) => i * 5);
const n = 6;
const D = 8;
const att = {
  x: { data: gaussianMatrix(n, D, 3), rows: n, cols: D },
  wq: { data: gaussianMatrix(D, D, 4), rows: D, cols: D },
  wk: { data: gaussianMatrix(D, D, 5), rows: D, cols: D },
  wv: { data: gaussianMatrix(D, D, 6), rows: D, cols: D },
  wo: { data: gaussianMatrix(D, D, 7), rows: D, cols: D },
  bq: gaussianMatrix(1, D, 8),
  bk: gaussianMatrix(1, D, 9),
  bv: gaussianMatrix(1, D, 10),
  bo: gaussianMatrix(1, D, 11),
  gamma: new Float32Array(D).fill(1),
  beta: new Float32Array(D),
  relevance: { data: new Float32Array(n * n).fill(0.5), rows: n, cols: n },
  mask: new Uint8Array(n * n).fill(1),
};
const dir = mkdtempSync(join(tmpdir(), 'vlk-leaks-'));
const npy = join(dir, 'g.npy');
writeNpy(npy, { data: g, rows: ng, cols: d });

const t = suite(`RSS stays within ${BOUND_MB} MiB`);

t.after(() => rmSync(dir, { recursive: true, force: true }));

t(`${N} calls each of the sync APIs on small inputs`, async () => {
  await phase('searchSync', N, () => searchSync(q, g, { k: 5, dim: d, metric: 'cosine' }));
  await phase('rerankSync', N, () => rerankSync(q, g, lists, { k: 3, dim: d }));
  await phase('mergeTopKSync', N, () => mergeTopKSync(parts, { k: 4 }));
  await phase('composeSync', N, () => composeSync(q, q, { mode: 'sum', dim: d }));
  await phase('relevanceSync', N, () => relevanceSync(q, { dim: d }));
  await phase('biasedAttentionSync', N, () => biasedAttentionSync(att, { heads: 2, biasWeight: 1 }));
  await phase('clipLossSync', N, () => clipLossSync(q, q, { dim: d, logitScale: 2 }));
  await phase('rankOfTargetsSync', N, () => rankOfTargetsSync(q, g, targets, { dim: d }));
  await phase('readVectors', N, () => readVectors(npy));
});

t(`${N} FlatIndex add + searchSync + remove calls, ${N} async search / clipLoss / index.search calls`, async () => {
  const index = new FlatIndex({ dim: d, metric: 'l2' });
  index.add(g);
  await phase('FlatIndex add/searchSync/remove', N, (i) => {
    index.add(q.subarray(0, d), [1_000 + i]);
    index.searchSync(q, { k: 5 });
    index.remove(1_000 + i);
    // Removed rows keep their memory until compact(), by design: reclaim it as a service would.
    if (i % 1_000 === 999) index.compact();
  });
  await phase('search (async)', N, () => search(q, g, { k: 5, dim: d }));
  await phase('clipLoss (async)', N, () => clipLoss(q, q, { dim: d, logitScale: 2 }));
  const ac = new AbortController();
  await phase('FlatIndex.search (async, with signal)', N, () => index.search(q, { k: 5, signal: ac.signal }));
  index.close();
});

t(`${CYCLES} FlatIndex create/add/search/close cycles, ${CYCLES} dropped without close`, async () => {
  await phase(
    'FlatIndex create/close',
    CYCLES,
    () => {
      const index = new FlatIndex({ dim: d });
      index.add(g);
      index.searchSync(q, { k: 2 });
      index.close();
    },
    100,
  );
  // Indexes dropped without close(): the finalizer frees them (45,000 of them in a fresh process:
  // the next test).
  await phase(
    'FlatIndex dropped without close (finalizer)',
    CYCLES,
    () => {
      const index = new FlatIndex({ dim: d });
      index.add(g);
    },
    100,
  );
  console.log(`  growth per phase (MiB): ${JSON.stringify(Object.fromEntries(Object.entries(growth).map(([k, v]) => [k, +v.toFixed(2)])))}`);
});

t('45,000 small indexes dropped without close(), 5,000 at a time: RSS flat after the first 5,000 (fresh process)', () => {
  // Finalizers run some time after a collection, so thousands of dropped indexes are alive at once
  // and their memory is reused only afterwards. With a 1,024-row first block (98 KiB here) RSS grew
  // from 122 to 413 MiB over these 45,000; with blocks sized to their rows it stays flat.
  if (sanitized) {
    console.log(`  skipped under ${sanitized}: RSS bounds are not checked there`);
    return;
  }
  const script = `
    const v = require(${JSON.stringify(distCjs)});
    const g = new Float32Array(37 * 24).map((_, i) => Math.sin(i));
    const rss = [];
    (async () => {
      for (let round = 0; round < 9; round++) {
        for (let i = 0; i < 5000; i++) new v.FlatIndex({ dim: 24 }).add(g);
        for (let k = 0; k < 3; k++) { global.gc(); await new Promise((r) => setTimeout(r, 30)); }
        rss.push(process.memoryUsage().rss / 2 ** 20);
      }
      console.log(JSON.stringify(rss));
    })();`;
  const r = runNode(script, {}, ['--expose-gc']);
  assert.is(r.status, 0, r.stderr);
  const rss: number[] = r.json;
  const growth = rss[rss.length - 1] - rss[0];
  console.log(`  RSS after each 5,000 dropped indexes (MiB): ${rss.map((x) => x.toFixed(1)).join(', ')}`);
  assert.ok(growth < BOUND_MB, `RSS grew ${growth.toFixed(1)} MiB from 5,000 to 45,000 dropped indexes (bound ${BOUND_MB})`);
});

t('the measurement sees a leak of 1 KiB a call (control, run last: it leaves the heap large)', async () => {
  if (sanitized) {
    console.log(`  skipped under ${sanitized}: RSS bounds are not checked there`);
    return;
  }
  const kept: Buffer[] = [];
  const mb = await measure('control: 1 KiB kept per call', 64_000, () => kept.push(Buffer.alloc(1024, 1)), 0);
  assert.ok(mb > BOUND_MB, `64,000 kept 1 KiB buffers grew RSS by only ${mb.toFixed(1)} MiB`);
  kept.length = 0;
});

t.run();
