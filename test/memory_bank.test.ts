// MemoryBank and emaUpdate (test/memory_bank.test.ts): the ring buffer against a plain JS model of
// a FIFO queue (wrap-around, B > free space, B > size keeps the last `size` rows, snapshot oldest
// first, ids, -1 for entries without ids), typed errors that leave the bank unchanged, the
// call-time (copy-on-write) view of an async loss racing an enqueue, close / dispose; emaUpdate
// against a float64 reference for one pair, records and a large array split over the pool, with
// NaN and shape errors that leave every target untouched.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { emaUpdate, MemoryBank, memoryInfoNce, memoryInfoNceSync, VlkError } from './helpers/lib';
import { gaussianMatrix } from './helpers/random';
import { expectCode as code } from './helpers/expect';

const Bank = suite('MemoryBank');

Bank('FIFO semantics against a JS queue model (wrap-around, B > free space, B > size)', () => {
  for (const [size, dim] of [[5, 3], [1, 4], [7, 1]] as const) {
    const bank = new MemoryBank({ size, dim });
    assert.is(bank.count, 0);
    assert.is(bank.size, size);
    assert.is(bank.dim, dim);
    assert.is(bank.snapshot().count, 0);
    let model: { row: number[]; id: number }[] = [];
    let next = 0;
    // Batches of awkward sizes: 0, 1, 2, size - 1, size, size + 3, 2 size + 1.
    for (const b of [2, 1, 0, size - 1, size, size + 3, 1, 2 * size + 1, 3]) {
      const keys = new Float32Array(b * dim);
      const ids: number[] = [];
      const rows: { row: number[]; id: number }[] = [];
      for (let i = 0; i < b; i++) {
        const row = Array.from({ length: dim }, (_, x) => next * 10 + x);
        keys.set(row, i * dim);
        ids.push(1000 + next);
        rows.push({ row, id: 1000 + next });
        next++;
      }
      const count = bank.enqueue({ data: keys, rows: b, cols: dim }, ids);
      model = model.concat(rows).slice(-size);
      assert.is(count, model.length);
      const snap = bank.snapshot();
      assert.is(snap.count, model.length);
      assert.equal(Array.from(snap.ids), model.map((m) => m.id), `ids after a batch of ${b}`);
      assert.equal(Array.from(snap.data), model.flatMap((m) => m.row), `data after a batch of ${b}`);
    }
    // A view into the middle of a larger buffer (byteOffset honoured) and a Float64Array of ids.
    const big = new Float32Array(5 * dim).map((_, i) => -i);
    bank.enqueue({ data: big.subarray(2 * dim, 4 * dim), rows: 2, cols: dim }, Float64Array.from([7, 8]));
    const tail = bank.snapshot();
    const kept = Math.min(2, size);
    assert.equal(Array.from(tail.data.subarray((tail.count - kept) * dim)), Array.from(big.subarray((4 - kept) * dim, 4 * dim)));
    assert.equal(Array.from(tail.ids.subarray(tail.count - kept)), [7, 8].slice(2 - kept));
    bank.clear();
    assert.is(bank.count, 0);
    bank.enqueue(new Float32Array(dim).fill(1));
    assert.equal(Array.from(bank.snapshot().ids), [-1], 'no ids: -1');
    bank.close();
  }
});

Bank('errors are typed and leave the bank unchanged; memoryUsage; close and dispose', () => {
  const bank = new MemoryBank({ size: 4, dim: 3 });
  bank.enqueue(gaussianMatrix(2, 3, 1), [1, 2]);
  const before = bank.snapshot();
  const bad = gaussianMatrix(3, 3, 2);
  bad[2 * 3 + 1] = NaN;
  code(() => bank.enqueue(bad, [5, 6, 7]), 'ERR_VLK_NON_FINITE', /keys: row 2, element 1/);
  code(() => bank.enqueue(new Float32Array(4)), 'ERR_VLK_DIM_MISMATCH', /keys/);
  code(() => bank.enqueue({ data: new Float32Array(4), rows: 2, cols: 2 }), 'ERR_VLK_DIM_MISMATCH', /keys/);
  code(() => bank.enqueue(new Float32Array(6), [1]), 'ERR_VLK_SHAPE', /ids/);
  code(() => bank.enqueue(new Float32Array(6), [1, -2]), 'ERR_VLK_INVALID_ARG', /ids\[1\]/);
  code(() => bank.enqueue(new Float32Array(6), [1, 1.5]), 'ERR_VLK_INVALID_ARG', /ids\[1\]/);
  code(() => bank.enqueue(new Float64Array(6) as never), 'ERR_VLK_TYPE', /keys/);
  const after = bank.snapshot();
  assert.equal(Array.from(after.data), Array.from(before.data));
  assert.equal(Array.from(after.ids), Array.from(before.ids));
  assert.equal(bank.memoryUsage(), { bytes: 4 * 3 * 4 + 4 * 8, bytesPerEntry: 3 * 4 + 8 });
  code(() => new MemoryBank({ size: 0, dim: 3 }), 'ERR_VLK_INVALID_ARG', /size/);
  code(() => new MemoryBank({ size: 2, dim: 1.5 }), 'ERR_VLK_INVALID_ARG', /dim/);
  code(() => new MemoryBank(null as never), 'ERR_VLK_TYPE');
  bank.close();
  bank.close();
  assert.ok(bank.closed);
  code(() => bank.count, 'ERR_VLK_INVALID_ARG', /closed/);
  code(() => bank.enqueue(new Float32Array(3)), 'ERR_VLK_INVALID_ARG', /closed/);
  code(() => bank.snapshot(), 'ERR_VLK_INVALID_ARG', /closed/);
  code(() => memoryInfoNceSync(new Float32Array(3), new Float32Array(3), bank, { dim: 3 }), 'ERR_VLK_INVALID_ARG', /closed/);
  let disposed: MemoryBank;
  {
    using b2 = new MemoryBank({ size: 2, dim: 2 });
    disposed = b2;
    b2.enqueue(new Float32Array(4));
  }
  assert.ok(disposed.closed);
});

Bank('an async loss reads the bank as it was at call time (enqueue right after, copy-on-write)', async () => {
  const d = 16;
  const bank = new MemoryBank({ size: 64, dim: d });
  bank.enqueue(gaussianMatrix(64, d, 3));
  const q = gaussianMatrix(8, d, 4);
  const k = gaussianMatrix(8, d, 5);
  const opts = { dim: d, temperature: 0.5, grads: false };
  const want = memoryInfoNceSync(q, k, bank.snapshot().data, opts).loss;
  // Start several losses, then overwrite the whole bank (and close it) before they run.
  const pending = [memoryInfoNce(q, k, bank, opts), memoryInfoNce(q, k, bank, opts), memoryInfoNce(q, k, bank, opts)];
  const fresh = gaussianMatrix(64, d, 6);
  bank.enqueue(fresh);
  const got = await Promise.all(pending);
  for (const r of got) assert.is(r.loss, want);
  const now = memoryInfoNceSync(q, k, bank, opts).loss;
  assert.is(now, memoryInfoNceSync(q, k, fresh, opts).loss);
  assert.ok(now !== want);
  const again = memoryInfoNce(q, k, bank, opts);
  bank.close();
  assert.is((await again).loss, now, 'closing does not free what a pending loss reads');
});

const Ema = suite('emaUpdate');

function emaRef(t: Float32Array, s: Float32Array, m: number): Float32Array {
  return Float32Array.from(t, (x, i) => m * x + (1 - m) * s[i]);
}

Ema('one pair, records and a large array against float64; default momentum 0.999', () => {
  for (const [n, m] of [[1, 0.5], [7, 0.999], [1000, 0], [33, 1]] as const) {
    const t = gaussianMatrix(1, n, 10 + n);
    const s = gaussianMatrix(1, n, 20 + n);
    const want = emaRef(t, s, m);
    emaUpdate(t, s, m);
    assert.equal(Array.from(t), Array.from(want), `n = ${n}, m = ${m}`);
  }
  const t = gaussianMatrix(1, 9, 1);
  const s = gaussianMatrix(1, 9, 2);
  const want = emaRef(t, s, 0.999);
  emaUpdate(t, s);
  assert.equal(Array.from(t), Array.from(want));
  // Large: split over the pool, same numbers for any thread count.
  const big = gaussianMatrix(1, 1_000_003, 3);
  const src = gaussianMatrix(1, 1_000_003, 4);
  const a = Float32Array.from(big);
  const b = Float32Array.from(big);
  emaUpdate(a, src, 0.9, { threads: 1 });
  emaUpdate(b, src, 0.9, { threads: 4 });
  assert.ok(a.every((x, i) => x === b[i]), 'thread count independent');
  const w = emaRef(big, src, 0.9);
  assert.ok(a.every((x, i) => x === w[i]), 'large array vs reference');
  // Records: every name of the target; extra source names ignored.
  const target = { w: gaussianMatrix(1, 5, 5), b: gaussianMatrix(1, 2, 6) };
  const source = { w: gaussianMatrix(1, 5, 7), b: gaussianMatrix(1, 2, 8), extra: new Float32Array(3) };
  const ww = emaRef(target.w, source.w, 0.99);
  const wb = emaRef(target.b, source.b, 0.99);
  emaUpdate(target, source, 0.99);
  assert.equal(Array.from(target.w), Array.from(ww));
  assert.equal(Array.from(target.b), Array.from(wb));
});

Ema('NaN, shapes and momentum: typed errors, no target changed', () => {
  const target = { w: gaussianMatrix(1, 5, 1), b: gaussianMatrix(1, 2, 2) };
  const keep = { w: Float32Array.from(target.w), b: Float32Array.from(target.b) };
  const nan = { w: gaussianMatrix(1, 5, 3), b: Float32Array.from([1, NaN]) };
  code(() => emaUpdate(target, nan), 'ERR_VLK_NON_FINITE', /source 'b': element 1/);
  assert.equal(Array.from(target.w), Array.from(keep.w), 'w untouched although it was checked first');
  const t = new Float32Array([1, Infinity]);
  code(() => emaUpdate(t, new Float32Array(2)), 'ERR_VLK_NON_FINITE', /target: element 1/);
  code(() => emaUpdate(target, { w: new Float32Array(5) }), 'ERR_VLK_SHAPE', /'b'/);
  code(() => emaUpdate(target, { w: new Float32Array(4), b: new Float32Array(2) }), 'ERR_VLK_SHAPE', /'w'/);
  code(() => emaUpdate(new Float32Array(2), new Float32Array(3)), 'ERR_VLK_SHAPE');
  code(() => emaUpdate(new Float32Array(2), new Float64Array(2) as never), 'ERR_VLK_TYPE', /source/);
  code(() => emaUpdate(new Float32Array(2), new Float32Array(2), 1.5), 'ERR_VLK_INVALID_ARG', /momentum/);
  code(() => emaUpdate(new Float32Array(2), new Float32Array(2), NaN), 'ERR_VLK_INVALID_ARG', /momentum/);
  assert.equal(Array.from(target.w), Array.from(keep.w));
  assert.equal(Array.from(target.b), Array.from(keep.b));
});

Bank.run();
Ema.run();
