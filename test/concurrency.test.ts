// Concurrency (test/concurrency.test.ts): one FlatIndex under 1,000 concurrent async searches,
// add/remove racing searches (each result is the exact answer of one state the index passed
// through), the addon in 4 worker_threads at once (and a worker terminated with work in flight),
// abort storms, process exit with searches in flight, and close() while a search runs.
import { Worker } from 'node:worker_threads';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { binding, FlatIndex, VlkError, type FlatIndexSearchResult } from './helpers/lib';
import { runNode } from './helpers/child';
import { distCjs } from './helpers/paths';
import { gaussianMatrix, rng } from './helpers/random';

const t = suite('concurrency');

/** Fails the test instead of hanging when `p` has not settled after `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not settled after ${ms} ms`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

/** Waits (generously) for the addon's pool to report no call in flight. */
async function drained(what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (binding.info().inFlight !== 0) {
    if (Date.now() > deadline) assert.unreachable(`${what}: inFlight still ${binding.info().inFlight}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const same = (a: FlatIndexSearchResult, b: FlatIndexSearchResult): boolean =>
  a.k === b.k &&
  a.count === b.count &&
  Buffer.compare(Buffer.from(a.ids.buffer, a.ids.byteOffset, a.ids.byteLength), Buffer.from(b.ids.buffer, b.ids.byteOffset, b.ids.byteLength)) === 0 &&
  Buffer.compare(Buffer.from(a.scores.buffer, a.scores.byteOffset, a.scores.byteLength), Buffer.from(b.scores.buffer, b.scores.byteOffset, b.scores.byteLength)) === 0 &&
  Array.from(a.counts).join() === Array.from(b.counts).join();

/** Plain float64 inner-product top-k ids of one query over rows (ties: lower row first). */
function topIds(query: Float32Array, rows: Float32Array, dim: number, ids: number[], k: number): { ids: number[]; scores: number[] } {
  const scored = ids.map((id, r) => {
    let s = 0;
    for (let c = 0; c < dim; c++) s += query[c] * rows[r * dim + c];
    return { id, s, r };
  });
  scored.sort((a, b) => b.s - a.s || a.r - b.r);
  const top = scored.slice(0, k);
  return { ids: top.map((x) => x.id), scores: top.map((x) => x.s) };
}

t('1,000 concurrent async searches on one index equal the sync search and the float64 top-1', async () => {
  const d = 33;
  const n = 1_537;
  const gallery = gaussianMatrix(n, d, 11);
  using index = new FlatIndex({ dim: d });
  index.add(gallery);
  const calls = 1_000;
  const queries = Array.from({ length: calls }, (_, i) => gaussianMatrix(1 + (i % 7), d, 1_000 + i));
  const ks = Array.from({ length: calls }, (_, i) => [1, 7, 10, 513, 2_000][i % 5]);
  const pending = queries.map((q, i) => index.search(q, { k: ks[i] }));
  let peak = 0;
  for (let i = 0; i < 50 && peak === 0; i++) {
    peak = Math.max(peak, binding.info().inFlight);
    await new Promise((resolve) => setImmediate(resolve));
  }
  const results = await within(Promise.all(pending), 50_000, '1,000 searches');
  const all = Array.from({ length: n }, (_, r) => r);
  results.forEach((res, i) => {
    const want = index.searchSync(queries[i], { k: ks[i] });
    if (!same(res, want)) assert.unreachable(`search ${i} (k ${ks[i]}) differs from searchSync`);
    assert.is(res.counts[0], Math.min(ks[i], n), `search ${i}: counts[0]`);
    const ref = topIds(queries[i].subarray(0, d), gallery, d, all, 1);
    assert.is(res.ids[0], ref.ids[0], `search ${i}: top-1 id vs float64`);
    assert.ok(Math.abs((res.scores[0] as number) - ref.scores[0]) < 1e-4 * Math.max(1, Math.abs(ref.scores[0])), `search ${i}: top-1 score`);
  });
  console.log(`  1,000 searches: up to ${peak} in flight at once`);
  await drained('1,000 searches');
});

t('add/remove racing searches: each result is the exact result of a state between its start and end', async () => {
  const d = 16;
  const k = 10;
  const queries = gaussianMatrix(3, d, 21);
  const vectorOf = (id: number) => gaussianMatrix(1, d, 50_000 + id);
  using index = new FlatIndex({ dim: d, metric: 'ip' });
  const live: number[] = [];
  let nextId = 0;
  for (; nextId < 300; nextId++) {
    index.add(vectorOf(nextId), [nextId]);
    live.push(nextId);
  }
  // states[v]: searchSync of the queries right after mutation v (one add or one remove).
  const states: FlatIndexSearchResult[] = [index.searchSync(queries, { k })];
  const ever = new Set(live);
  const pending: Promise<{ res: FlatIndexSearchResult; from: number; to: number }>[] = [];
  const r = rng(7);
  for (let step = 0; step < 400; step++) {
    for (let s = 0; s < 3; s++) {
      const from = states.length - 1;
      pending.push(index.search(queries, { k }).then((res) => ({ res, from, to: states.length - 1 })));
    }
    if (step % 2 === 0) {
      const rows = 1 + (step % 5);
      const ids = Array.from({ length: rows }, (_, j) => nextId + j);
      const block = new Float32Array(rows * d);
      ids.forEach((id, j) => block.set(vectorOf(id), j * d));
      index.add(block, ids);
      ids.forEach((id) => {
        live.push(id);
        ever.add(id);
      });
      nextId += rows;
    } else {
      const victims = new Set<number>();
      for (let j = 0; j < 1 + (step % 7); j++) victims.add(live[Math.floor(r() * live.length)]);
      assert.is(index.remove([...victims]), victims.size);
      for (const v of victims) live.splice(live.indexOf(v), 1);
    }
    states.push(index.searchSync(queries, { k }));
    if (step % 3 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  const done = await within(Promise.all(pending), 50_000, 'racing searches');
  let later = 0;
  done.forEach(({ res, from, to }, i) => {
    for (let q = 0; q < 3; q++) {
      for (let j = 0; j < k; j++) {
        const id = res.ids[q * k + j] as number;
        if (!ever.has(id)) assert.unreachable(`search ${i}: id ${id} was never in the index`);
      }
    }
    let match = -1;
    for (let v = from; v <= to && match < 0; v++) if (same(res, states[v])) match = v;
    if (match < 0) assert.unreachable(`search ${i}: matches no state in ${from}..${to}`);
    if (match > from) later++;
  });
  assert.is(index.size, live.length, 'size after all settle');
  // The final state against a plain float64 reference.
  const rows = new Float32Array(live.length * d);
  live.forEach((id, j) => rows.set(vectorOf(id), j * d));
  const final = index.searchSync(queries, { k });
  for (let q = 0; q < 3; q++) {
    const ref = topIds(queries.subarray(q * d, (q + 1) * d), rows, d, live, k);
    assert.equal(Array.from(final.ids.subarray(q * k, (q + 1) * k) as Float64Array), ref.ids, `final state query ${q}: ids`);
  }
  console.log(`  ${done.length} racing searches; ${later} saw a state newer than the one at their call`);
  await drained('racing searches');
});

// Each worker loads the addon itself, builds its own index from the same seeded data and returns
// its search results; `hold` > 0: it starts `hold` more searches and reports before they finish.
const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const { FlatIndex, info } = require(workerData.lib);
const { dim, gallery, queries, k, hold } = workerData;
const index = new FlatIndex({ dim });
index.add(gallery);
(async () => {
  const results = await Promise.all(Array.from({ length: 20 }, () => index.search(queries, { k })));
  for (let i = 0; i < hold; i++) index.search(queries, { k }).catch(() => {});
  parentPort.postMessage({ threads: info().threads, results: results.map((r) => ({ ids: Array.from(r.ids), scores: Array.from(r.scores) })) });
})().catch((err) => parentPort.postMessage({ error: String(err && err.stack || err) }));
`;

function startWorker(data: object): { worker: Worker; reply: Promise<any> } {
  const worker = new Worker(workerSource, { eval: true, workerData: data });
  const reply = new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker exited (code ${code}) before replying`)));
  });
  return { worker, reply };
}

t('the addon in 4 worker_threads at once: each its own index, results equal the main thread', async () => {
  const dim = 24;
  const gallery = gaussianMatrix(2_049, dim, 31);
  const queries = gaussianMatrix(5, dim, 32);
  const k = 9;
  using index = new FlatIndex({ dim });
  index.add(gallery);
  const want = index.searchSync(queries, { k });
  const workers = Array.from({ length: 4 }, () => startWorker({ lib: distCjs, dim, gallery, queries, k, hold: 0 }));
  const replies = await within(Promise.all(workers.map((w) => w.reply)), 50_000, '4 workers');
  replies.forEach((reply, w) => {
    if (reply.error) assert.unreachable(`worker ${w}: ${reply.error}`);
    assert.is(reply.results.length, 20);
    reply.results.forEach((res: { ids: number[]; scores: number[] }, i: number) => {
      assert.equal(res.ids, Array.from(want.ids as Float64Array), `worker ${w} search ${i}: ids`);
      assert.equal(res.scores, Array.from(want.scores), `worker ${w} search ${i}: scores`);
    });
  });
  // The main thread's index is untouched by the workers' (separate state per instance).
  assert.ok(same(index.searchSync(queries, { k }), want), 'main-thread index unchanged');
  const codes = await Promise.all(workers.map((w) => w.worker.terminate()));
  assert.equal(codes.length, 4);
});

t('a worker terminated with 200 searches in flight: the process and the main-thread index carry on', async () => {
  const dim = 64;
  const gallery = gaussianMatrix(20_000, dim, 41);
  const queries = gaussianMatrix(16, dim, 42);
  const k = 10;
  const { worker, reply } = startWorker({ lib: distCjs, dim, gallery, queries, k, hold: 200 });
  const first = await within(reply, 50_000, 'worker reply');
  if (first.error) assert.unreachable(first.error);
  const code = await within(worker.terminate(), 30_000, 'worker terminate');
  assert.type(code, 'number');
  using index = new FlatIndex({ dim });
  index.add(gallery);
  const res = await index.search(queries, { k });
  assert.equal(Array.from(res.ids as Float64Array), first.results[0].ids, 'a search after the worker is gone');
  await drained('after terminate');
});

t('abort storm: 1,000 searches aborted at random times resolve correctly or reject with AbortError', async () => {
  const d = 48;
  using index = new FlatIndex({ dim: d, metric: 'cosine' });
  index.add(gaussianMatrix(4_000, d, 51));
  const queries = gaussianMatrix(8, d, 52);
  const want = index.searchSync(queries, { k: 10 });
  const r = rng(53);
  const calls = 1_000;
  const outcomes = { resolved: 0, aborted: 0 };
  const timers: NodeJS.Timeout[] = [];
  let preAborted = 0;
  const shared = new AbortController(); // 1 call in 4 shares one signal, aborted midway
  const pending = Array.from({ length: calls }, (_, i) => {
    const own = new AbortController();
    const ac = i % 4 === 0 ? shared : own;
    const when = r();
    if (ac === own) {
      if (when < 0.1) {
        own.abort(new Error('before the call'));
        preAborted++;
      }
      else if (when < 0.4) queueMicrotask(() => own.abort());
      else if (when < 0.7) setImmediate(() => own.abort());
      else timers.push(setTimeout(() => own.abort(), Math.floor(r() * 20)));
    }
    return index.search(queries, { k: 10, signal: ac.signal }).then(
      (res) => {
        if (!same(res, want)) assert.unreachable(`call ${i}: resolved with a wrong result`);
        outcomes.resolved++;
      },
      (err) => {
        if (!(err instanceof VlkError) || err.name !== 'AbortError' || (err as VlkError).code !== 'ABORT_ERR') {
          assert.unreachable(`call ${i}: rejected with ${err && err.name} ${err && err.code}: ${err && err.message}`);
        }
        outcomes.aborted++;
      },
    );
  });
  setTimeout(() => shared.abort(), 2);
  await within(Promise.all(pending), 50_000, 'abort storm');
  timers.forEach(clearTimeout);
  assert.is(outcomes.resolved + outcomes.aborted, calls);
  assert.ok(preAborted > 0 && outcomes.aborted >= preAborted, `${outcomes.aborted} rejected, ${preAborted} were aborted before the call`);
  console.log(`  abort storm: ${outcomes.resolved} resolved, ${outcomes.aborted} aborted`);
  await drained('abort storm');
  // The index still answers after the storm.
  assert.ok(same(await index.search(queries, { k: 10 }), want), 'search after the storm');
});

t('process.exit(0) with 200 searches in flight: exit code 0, no crash', () => {
  const script = `
const { FlatIndex } = require(${JSON.stringify(distCjs)});
const dim = 128;
const data = new Float32Array(30000 * dim);
for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37);
const index = new FlatIndex({ dim });
index.add(data);
const q = data.subarray(0, 32 * dim);
for (let i = 0; i < 200; i++) index.search(q, { k: 10 }).catch(() => {});
process.exit(0);
`;
  for (let run = 0; run < 3; run++) {
    const r = runNode(script);
    assert.is(r.signal, null, `run ${run}: killed by ${r.signal}; stderr: ${r.stderr}`);
    assert.is(r.status, 0, `run ${run}: exit status ${r.status}; stderr: ${r.stderr}`);
    assert.not.match(r.stderr, /abort|assert|segmentation|terminate called|FATAL/i, `run ${run}: stderr ${r.stderr}`);
  }
});

t('close() while searches run: each resolves exactly or rejects typed; later calls reject typed', async () => {
  const d = 64;
  const gallery = gaussianMatrix(30_000, d, 61);
  const queries = gaussianMatrix(32, d, 62);
  const outcomes = { resolved: 0, rejected: 0 };
  for (let round = 0; round < 12; round++) {
    const index = new FlatIndex({ dim: d });
    index.add(gallery);
    const want = index.searchSync(queries, { k: 5 });
    const pending = Array.from({ length: 4 }, () => index.search(queries, { k: 5 }));
    if (round % 3 === 1) await new Promise((resolve) => setImmediate(resolve));
    if (round % 3 === 2) await new Promise((resolve) => setTimeout(resolve, round % 4));
    index.close();
    const settled = await within(Promise.allSettled(pending), 30_000, `round ${round}`);
    settled.forEach((s, i) => {
      if (s.status === 'fulfilled') {
        if (!same(s.value, want)) assert.unreachable(`round ${round} search ${i}: resolved with a wrong result`);
        outcomes.resolved++;
      } else {
        assert.instance(s.reason, VlkError, `round ${round} search ${i}: ${s.reason}`);
        outcomes.rejected++;
      }
    });
    const later = await index.search(queries, { k: 5 }).then(
      () => null,
      (err) => err,
    );
    assert.instance(later, VlkError, 'search after close rejects');
    assert.is(later.code, 'ERR_VLK_INVALID_ARG');
    assert.match(later.message, /index is closed/);
    for (const call of [() => index.searchSync(queries, { k: 5 }), () => index.add(queries), () => index.size]) {
      try {
        call();
        assert.unreachable('a call after close() returned');
      } catch (err) {
        assert.instance(err, VlkError);
        assert.is((err as VlkError).code, 'ERR_VLK_INVALID_ARG');
      }
    }
    index.close(); // idempotent
  }
  console.log(`  close() during searches: ${outcomes.resolved} resolved, ${outcomes.rejected} rejected`);
  await drained('close during search');
});

t.run();
