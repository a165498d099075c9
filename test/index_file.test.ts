// FlatIndex persistence (test/index_file.test.ts): save/load (heap and mmap) and toBuffer/fromBuffer,
// sync and async, round trip bit-exact for every storage, approximate mode and metric (search
// results, get, size, automatic ids, BigInt ids); removed vectors stay out; a loaded (mapped) index
// keeps working after adds; progress and abort; atomic writes; and a catalogue of damaged files
// (truncated at every header field and inside each section, flipped bytes, hostile counts and
// offsets with valid checksums, wrong magic or version), each a typed error through every reader.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlatIndex, VlkError } from './helpers/lib';
import type { FlatIndexSearchResult, FlatIndexStorage } from './helpers/lib';
import { gaussianMatrix } from './helpers/random';
import { crc32c, reseal } from './helpers/crc32c';

const dir = mkdtempSync(join(tmpdir(), 'vlk-index-file-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

type Metric = 'ip' | 'cosine' | 'l2';
const VARIANTS: { storage: FlatIndexStorage; approximate: boolean }[] = [
  { storage: 'f32', approximate: false },
  { storage: 'bf16', approximate: false },
  { storage: 'i8', approximate: false },
  { storage: 'bf16', approximate: true },
  { storage: 'i8', approximate: true },
];

function sameResult(a: FlatIndexSearchResult, b: FlatIndexSearchResult, what: string): void {
  assert.equal(Array.from(a.ids, String), Array.from(b.ids, String), `${what}: ids`);
  assert.equal(Array.from(a.counts), Array.from(b.counts), `${what}: counts`);
  assert.equal(
    Buffer.from(a.scores.buffer, a.scores.byteOffset, a.scores.byteLength).toString('hex'),
    Buffer.from(b.scores.buffer, b.scores.byteOffset, b.scores.byteLength).toString('hex'),
    `${what}: scores bit for bit`,
  );
}

function build(storage: FlatIndexStorage, approximate: boolean, metric: Metric, n: number, d: number): FlatIndex {
  const index = new FlatIndex({ dim: d, metric, storage, approximate });
  const rows = gaussianMatrix(n, d, n + d);
  index.add(rows, Float64Array.from({ length: n }, (_, i) => 3 * i + 1));
  index.remove([4, 10, 3 * (n - 1) + 1]);
  return index;
}

const RoundTrip = suite('round trips are bit-exact');

RoundTrip('every storage, approximate mode and metric, through every path', async () => {
  const d = 19;
  const n = 130; // not a multiple of 64: a mapped block ends mid-word
  const queries = gaussianMatrix(7, d, 5);
  let checked = 0;
  for (const { storage, approximate } of VARIANTS) {
    for (const metric of ['ip', 'cosine', 'l2'] as Metric[]) {
      using index = build(storage, approximate, metric, n, d);
      const want = index.searchSync(queries, { k: 12 });
      const file = join(dir, `rt-${storage}-${approximate}-${metric}.vlk`);
      await index.save(file);
      const bytes = await index.toBuffer();
      assert.equal(readFileSync(file), bytes, 'save and toBuffer write the same bytes');
      const loaded = [
        FlatIndex.loadSync(file),
        FlatIndex.loadSync(file, { mmap: true }),
        await FlatIndex.load(file),
        await FlatIndex.load(file, { mmap: true }),
        FlatIndex.fromBufferSync(bytes),
        await FlatIndex.fromBuffer(bytes),
      ];
      for (const [i, l] of loaded.entries()) {
        const what = `${storage}${approximate ? ' approximate' : ''} ${metric} path ${i}`;
        assert.is(l.dim, d);
        assert.is(l.metric, metric);
        assert.is(l.storage, storage);
        assert.is(l.approximate, approximate);
        assert.is(l.size, index.size);
        sameResult(l.searchSync(queries, { k: 12 }), want, what);
        for (const id of [1, 7, 3 * 64 + 1, 3 * 129 - 2]) assert.equal(l.get(id), index.get(id), `${what}: get(${id})`);
        assert.is(l.has(4), false, `${what}: removed ids stay removed`);
        // Automatic ids continue after the largest id, and the index keeps working after adds.
        const extra = gaussianMatrix(70, d, 99);
        const { firstId } = l.add(extra);
        assert.is(firstId, 3 * (n - 1) + 2);
        const copy = new FlatIndex({ dim: d, metric, storage, approximate });
        copy.add(extra, Float64Array.from({ length: 70 }, (_, j) => (firstId as number) + j));
        const after = l.searchSync(queries, { k: 5, filter: { allow: Array.from({ length: 70 }, (_, j) => (firstId as number) + j) } });
        sameResult(after, copy.searchSync(queries, { k: 5 }), `${what}: after add`);
        copy.close();
        l.close();
      }
      checked++;
    }
  }
  assert.is(checked, 15);
});

RoundTrip('an empty index, and BigInt ids beyond 2^53', () => {
  using empty = new FlatIndex({ dim: 3 });
  using e2 = FlatIndex.fromBufferSync(empty.toBufferSync());
  assert.is(e2.size, 0);
  assert.is(e2.searchSync(new Float32Array(3), { k: 2 }).counts[0], 0);
  using big = new FlatIndex({ dim: 2 });
  big.add(Float32Array.of(1, 0, 0, 1), BigInt64Array.of(2n ** 60n, 5n));
  using b2 = FlatIndex.fromBufferSync(big.toBufferSync());
  const r = b2.searchSync(Float32Array.of(1, 0), { k: 2 });
  assert.instance(r.ids, BigInt64Array);
  assert.equal(Array.from(r.ids as BigInt64Array), [2n ** 60n, 5n]);
});

RoundTrip('mmap keeps the fp32 rows out of the heap', () => {
  using index = new FlatIndex({ dim: 256 });
  index.add(gaussianMatrix(4096, 256, 1));
  const file = join(dir, 'mmap.vlk');
  index.saveSync(file);
  using heap = FlatIndex.loadSync(file);
  using mapped = FlatIndex.loadSync(file, { mmap: true });
  assert.ok(mapped.memoryUsage().bytes < heap.memoryUsage().bytes / 4, `${mapped.memoryUsage().bytes} vs ${heap.memoryUsage().bytes}`);
});

RoundTrip.run();

const Io = suite('progress, abort and atomic writes');

Io('onProgress is monotone and ends at the total; abort leaves the target as it was', async () => {
  using index = new FlatIndex({ dim: 64 });
  index.add(gaussianMatrix(20000, 64, 2));
  const file = join(dir, 'progress.vlk');
  const seen: [number, number][] = [];
  await index.save(file, { onProgress: (done, total) => seen.push([done, total]) });
  assert.ok(seen.length >= 1);
  const total = statSync(file).size;
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i][0] >= seen[i - 1][0]);
  assert.equal(seen[seen.length - 1], [total, total]);
  const loadSeen: number[] = [];
  using l = await FlatIndex.load(file, { onProgress: (done) => loadSeen.push(done) });
  assert.is(loadSeen[loadSeen.length - 1], total);
  assert.is(l.size, 20000);

  const before = readFileSync(file);
  using other = new FlatIndex({ dim: 64 });
  other.add(gaussianMatrix(10, 64, 3));
  const ac = new AbortController();
  ac.abort(new Error('stop'));
  try {
    await other.save(file, { signal: ac.signal });
    assert.unreachable('aborted save resolved');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'ABORT_ERR');
  }
  assert.equal(readFileSync(file), before, 'the target is unchanged');
  // onProgress that throws rejects the call after the save completes.
  await index.save(file, { onProgress: () => { throw new Error('progress failed'); } }).then(
    () => assert.unreachable('resolved'),
    (e) => assert.is((e as Error).message, 'progress failed'),
  );
});

Io('write failures: typed ERR_VLK_IO, nothing left behind, the old file intact', async () => {
  using index = new FlatIndex({ dim: 4 });
  index.add(new Float32Array(8));
  const missing = join(dir, 'no-such-dir', 'x.vlk');
  for (const call of [() => index.saveSync(missing), () => index.save(missing)]) {
    try {
      await call();
      assert.unreachable('saved into a missing folder');
    } catch (e) {
      assert.instance(e, VlkError);
      assert.is((e as VlkError).code, 'ERR_VLK_IO');
      assert.match((e as Error).message, /no-such-dir/);
    }
  }
  const asDir = join(dir, 'is-a-dir');
  writeFileSync(join(dir, 'keep.vlk'), 'old');
  try {
    index.saveSync(dir); // a directory cannot be replaced by a file
    assert.unreachable('saved over a directory');
  } catch (e) {
    assert.is((e as VlkError).code, 'ERR_VLK_IO');
  }
  assert.not.ok(existsSync(asDir));
  assert.ok(readdirSync(dir).every((f) => !f.includes('.tmp')), `no temp files: ${readdirSync(dir)}`);
  for (const [what, fn] of [
    ['load of a missing file', () => FlatIndex.loadSync(join(dir, 'missing.vlk'))],
    ['load of a directory', () => FlatIndex.loadSync(dir)],
  ] as const) {
    try {
      fn();
      assert.unreachable(what);
    } catch (e) {
      assert.is((e as VlkError).code, 'ERR_VLK_IO', what);
    }
  }
});

Io.run();

// ---- damaged files -------------------------------------------------------------------------


const Corrupt = suite('damaged files: typed errors, never a crash or a huge allocation');

Corrupt('the catalogue, through loadSync (heap and mmap), load and fromBufferSync', async () => {
  using index = new FlatIndex({ dim: 5, storage: 'i8', metric: 'l2' });
  index.add(gaussianMatrix(9, 5, 8), Float64Array.from({ length: 9 }, (_, i) => i * 2));
  const good = index.toBufferSync();
  assert.ok(crc32c(Buffer.from('123456789')) === 0xe3069283, 'crc32c check value');
  const sec = (i: number) => ({ off: Number(good.readBigUInt64LE(48 + 16 * i)), len: Number(good.readBigUInt64LE(56 + 16 * i)) });
  const cases: [string, Buffer, RegExp][] = [];
  // Truncated at every header field boundary and inside each section.
  for (const at of [0, 7, 8, 12, 16, 20, 24, 28, 32, 40, 48, 64, 80, 96, 112, 116, 124, 127]) {
    cases.push([`truncated at ${at}`, good.subarray(0, at), /truncated|header/]);
  }
  for (let s = 0; s < 4; s++) {
    const { off, len } = sec(s);
    if (len > 0) cases.push([`truncated inside section ${s}`, good.subarray(0, off + Math.floor(len / 2)), /truncat|length|section|end/]);
  }
  const edit = (what: string, fn: (b: Buffer) => void, re: RegExp, sealed = true) => {
    const b = Buffer.from(good);
    fn(b);
    cases.push([what, sealed ? reseal(b) : b, re]);
  };
  edit('wrong magic', (b) => b.write('NOTANIDX', 0), /magic/);
  edit('future version', (b) => b.writeUInt32LE(2, 8), /version 2/);
  edit('dim 0', (b) => b.writeUInt32LE(0, 16), /dim/);
  edit('dim 2^31', (b) => b.writeUInt32LE(2 ** 31, 16), /dim/);
  edit('unknown metric', (b) => b.writeUInt32LE(7, 20), /metric/);
  edit('unknown storage', (b) => b.writeUInt32LE(9, 24), /storage/);
  edit('unknown flag bits', (b) => b.writeUInt32LE(0x10, 28), /flag/);
  edit('count beyond the file', (b) => b.writeBigInt64LE(1000000n, 32), /count|length|section/);
  edit('count that overflows count x dim', (b) => b.writeBigInt64LE(2n ** 62n, 32), /count|overflow|length/);
  edit('negative count', (b) => b.writeBigInt64LE(-1n, 32), /count/);
  edit('section offset out of the file', (b) => b.writeBigUInt64LE(2n ** 40n, 48), /section|offset/);
  edit('misaligned section', (b) => b.writeBigUInt64LE(BigInt(sec(1).off + 4), 64), /align|offset|section/);
  edit('section length that lies', (b) => b.writeBigUInt64LE(BigInt(sec(0).len + 64), 56), /length|section/);
  edit('non-zero reserved bytes', (b) => b.writeUInt8(1, 118), /reserved/);
  edit('negative id', (b) => b.writeBigInt64LE(-5n, sec(0).off), /id/);
  edit('NaN scale', (b) => b.writeFloatLE(NaN, sec(3).off), /scale/);
  edit('negative scale', (b) => b.writeFloatLE(-1, sec(3).off), /scale/);
  edit('NaN in the fp32 rows', (b) => b.writeFloatLE(NaN, sec(1).off + 8), /NaN|finite|f32/);
  edit('duplicate ids', (b) => b.writeBigInt64LE(2n, sec(0).off), /twice|duplicate|id/);
  edit('next automatic id below an id', (b) => b.writeBigInt64LE(3n, 40), /next_auto_id|automatic/);
  edit('flipped header byte (checksum)', (b) => (b[33] ^= 0x40), /checksum|crc/i, false);
  edit('flipped payload byte (checksum)', (b) => (b[sec(2).off + 3] ^= 1), /checksum|crc/i, false);
  edit('trailing garbage', (b) => b.writeUInt8(0, 0), /magic/); // (placeholder replaced below)
  cases.pop();
  cases.push(['trailing bytes after the last section', reseal(Buffer.concat([good, Buffer.alloc(64)])), /end|length|trailing|size/]);
  assert.ok(cases.length >= 40, `${cases.length} cases`);

  const file = join(dir, 'bad.vlk');
  for (const [what, bytes, re] of cases) {
    writeFileSync(file, bytes);
    const readers: [string, () => unknown][] = [
      ['fromBufferSync', () => FlatIndex.fromBufferSync(bytes)],
      ['loadSync', () => FlatIndex.loadSync(file)],
      ['loadSync mmap', () => FlatIndex.loadSync(file, { mmap: true })],
    ];
    for (const [reader, fn] of readers) {
      try {
        fn();
        assert.unreachable(`${what}: ${reader} accepted it`);
      } catch (e) {
        assert.instance(e, VlkError, `${what}: ${reader}: ${e}`);
        assert.is((e as VlkError).code, 'ERR_VLK_CORRUPT', `${what}: ${reader}: ${(e as Error).message}`);
        assert.match((e as Error).message, re, `${what}: ${reader}: ${(e as Error).message}`);
      }
    }
    await FlatIndex.load(file).then(
      () => assert.unreachable(`${what}: load accepted it`),
      (e) => assert.is((e as VlkError).code, 'ERR_VLK_CORRUPT', `${what}: load`),
    );
  }
});

Corrupt.run();
