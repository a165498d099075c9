// Bad-input catalogue (test/bad_inputs.test.ts): the inputs of docs/bad-inputs.md that no op test
// covers (buffers, sizes, hostile file headers, indexes, aborts, results too large for memory),
// each asserting its typed error; and a check that every row of the catalogue cites a real test.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlatIndex, readFvecs, readNpy, relevanceSync, search, searchSync, VlkError } from './helpers/lib';
import { expectCode } from './helpers/expect';
import { gaussianMatrix } from './helpers/random';
import { repoRoot } from './helpers/paths';

const dir = mkdtempSync(join(tmpdir(), 'vlk-bad-inputs-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const D = 4;
const q2 = () => gaussianMatrix(2, D, 11);
const g7 = () => gaussianMatrix(7, D, 12);

async function rejectsWith(p: Promise<unknown>, want: string, match?: RegExp): Promise<VlkError> {
  const err = await p.then(() => undefined, (e) => e);
  assert.ok(err !== undefined, `expected a rejection with ${want}`);
  assert.instance(err, VlkError);
  assert.is(err.code, want, err.message);
  if (match) assert.match(err.message, match);
  return err as VlkError;
}

function npyFile(name: string, shape: string, dataBytes: number): string {
  let h = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape}), }`;
  while ((10 + h.length + 1) % 64 !== 0) h += ' ';
  h += '\n';
  const b = Buffer.alloc(10 + h.length + dataBytes);
  b.write('\x93NUMPY', 0, 'latin1');
  b[6] = 1;
  b.writeUInt16LE(h.length, 8);
  b.write(h, 10, 'latin1');
  const path = join(dir, name);
  writeFileSync(path, b);
  return path;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
function crc32c(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
/** A saved 7-row index with header field edits, both checksums recomputed (a hostile, not a damaged file). */
function hostileIndex(edit: (b: Buffer) => void): Buffer {
  const ix = new FlatIndex({ dim: D });
  ix.add(g7());
  const b = Buffer.from(ix.toBufferSync());
  ix.close();
  edit(b);
  b.writeUInt32LE(crc32c(b.subarray(128)), 112);
  b.writeUInt32LE(0, 124);
  b.writeUInt32LE(crc32c(b.subarray(0, 128)), 124);
  return b;
}

// ---------------------------------------------------------------------------------------------
const Buffers = suite('buffers and sizes');

Buffers('SharedArrayBuffer-backed queries are read like a copy', () => {
  const q = q2();
  const shared = new Float32Array(new SharedArrayBuffer(q.byteLength));
  shared.set(q);
  const a = searchSync(shared, g7(), { k: 3, dim: D });
  const b = searchSync(q, g7(), { k: 3, dim: D });
  assert.equal(Array.from(a.indices), Array.from(b.indices));
  assert.equal(Array.from(a.scores), Array.from(b.scores));
});

Buffers('options.dim = -4 is ERR_VLK_SHAPE naming options.dim', () => {
  expectCode(() => searchSync(q2(), g7(), { k: 1, dim: -4 }), 'ERR_VLK_SHAPE', /options\.dim.*-4/);
});

Buffers('options.dim = 1e300 is ERR_VLK_SHAPE naming options.dim', () => {
  expectCode(() => searchSync(q2(), g7(), { k: 1, dim: 1e300 }), 'ERR_VLK_SHAPE', /options\.dim.*1e\+300/);
});

Buffers('dims [2^30, 2^30] overflow 2^53: ERR_VLK_SHAPE naming both', () => {
  expectCode(() => searchSync({ data: q2(), dims: [2 ** 30, 2 ** 30] }, g7(), { k: 1, dim: D }), 'ERR_VLK_SHAPE', /queries.*1073741824 x 1073741824/);
});

Buffers('k = 1e300 is ERR_VLK_INVALID_K naming k and N', () => {
  expectCode(() => searchSync(q2(), g7(), { k: 1e300, dim: D }), 'ERR_VLK_INVALID_K', /options\.k.*1e\+300.*N = 7/);
});

Buffers('k = 2^31 - 1 with clamp searches with k = N', () => {
  const r = searchSync(q2(), g7(), { k: 2 ** 31 - 1, dim: D, clamp: true });
  assert.is(r.k, 7);
  assert.is(r.indices.length, 14);
});

// ---------------------------------------------------------------------------------------------
const Resource = suite('results larger than memory: typed error before allocating');

// 2^20 queries x 2^20 gallery rows of dim 1 are 8 MiB of input but 2^40 results (8 TiB).
const BIG = 2 ** 20;
const ones = (n: number) => new Float32Array(n).fill(1);

Resource('searchSync with Q x k = 2^20 x 2^20: ERR_VLK_OUT_OF_MEMORY naming Q x k', () => {
  expectCode(() => searchSync(ones(BIG), ones(BIG), { k: BIG, dim: 1 }), 'ERR_VLK_OUT_OF_MEMORY', /Q x k = 1048576 x 1048576.*bytes/);
});

Resource('search (async) with Q x k = 2^20 x 2^20 rejects with ERR_VLK_OUT_OF_MEMORY', async () => {
  await rejectsWith(search(ones(BIG), ones(BIG), { k: BIG, dim: 1 }), 'ERR_VLK_OUT_OF_MEMORY', /1048576 x 1048576/);
});

Resource('FlatIndex.searchSync with Q x k = 2^20 x 2^20: ERR_VLK_OUT_OF_MEMORY, index still usable', () => {
  const ix = new FlatIndex({ dim: 1 });
  ix.add(ones(BIG));
  expectCode(() => ix.searchSync(ones(BIG), { k: BIG }), 'ERR_VLK_OUT_OF_MEMORY', /Q x k = 1048576 x 1048576/);
  assert.is(ix.searchSync(ones(1), { k: 2 }).scores.length, 2);
  ix.close();
});

Resource('relevanceSync with n = 2^20 (n x n = 2^40 floats): ERR_VLK_OUT_OF_MEMORY naming relevance', () => {
  expectCode(() => relevanceSync({ data: ones(BIG), rows: BIG, cols: 1 }), 'ERR_VLK_OUT_OF_MEMORY', /relevance.*1099511627776 elements/);
});

// ---------------------------------------------------------------------------------------------
const Files = suite('hostile and truncated files');

Files('.npy header claiming 10^12 rows: ERR_VLK_CORRUPT naming the bytes needed and present', () => {
  const p = npyFile('rows1e12.npy', '1000000000000, 4', 16);
  expectCode(() => readNpy(p), 'ERR_VLK_CORRUPT', /16000000000000 bytes.*the file has 16/);
});

Files('.npy dimension 2^62: ERR_VLK_CORRUPT naming the dimension', () => {
  const p = npyFile('dim2e62.npy', '4611686018427387904, 8', 16);
  expectCode(() => readNpy(p), 'ERR_VLK_CORRUPT', /4611686018427387904 is above 2\^53 - 1/);
});

Files('.npy truncated to 2 of 3 rows: ERR_VLK_CORRUPT', () => {
  const p = npyFile('short.npy', '3, 4', 32);
  expectCode(() => readNpy(p), 'ERR_VLK_CORRUPT', /48 bytes.*the file has 32/);
});

Files('.npy with a bad magic: ERR_VLK_CORRUPT naming the magic', () => {
  const p = join(dir, 'magic.npy');
  writeFileSync(p, 'hello world');
  expectCode(() => readNpy(p), 'ERR_VLK_CORRUPT', /magic/);
});

Files('missing .npy file: ERR_VLK_IO naming the path', () => {
  expectCode(() => readNpy(join(dir, 'absent.npy')), 'ERR_VLK_IO', /absent\.npy/);
});

Files('.fvecs record claiming dim 2^31 - 1: ERR_VLK_CORRUPT naming the dim', () => {
  const p = join(dir, 'big.fvecs');
  const b = Buffer.alloc(8);
  b.writeInt32LE(2 ** 31 - 1, 0);
  writeFileSync(p, b);
  expectCode(() => readFvecs(p), 'ERR_VLK_CORRUPT', /dim 2147483647/);
});

Files('index header claiming 10^12 rows (checksums valid): ERR_VLK_CORRUPT, no allocation', () => {
  const b = hostileIndex((x) => x.writeBigInt64LE(10n ** 12n, 32));
  expectCode(() => FlatIndex.fromBufferSync(b), 'ERR_VLK_CORRUPT', /index buffer/);
});

Files('index header claiming dim 2^31: ERR_VLK_CORRUPT naming dim', () => {
  const b = hostileIndex((x) => x.writeUInt32LE(2 ** 31, 16));
  expectCode(() => FlatIndex.fromBufferSync(b), 'ERR_VLK_CORRUPT', /dim/);
});

Files('index buffer truncated to 200 bytes: ERR_VLK_CORRUPT naming the section', () => {
  const b = hostileIndex(() => {}).subarray(0, 200);
  expectCode(() => FlatIndex.fromBufferSync(b), 'ERR_VLK_CORRUPT', /section f32.*200 bytes/);
});

Files('fromBufferSync of a string: ERR_VLK_TYPE naming buffer', () => {
  expectCode(() => FlatIndex.fromBufferSync('abc' as any), 'ERR_VLK_TYPE', /buffer/);
});

Files('FlatIndex.loadSync of a missing file: ERR_VLK_IO naming the path', () => {
  expectCode(() => FlatIndex.loadSync(join(dir, 'absent.idx')), 'ERR_VLK_IO', /absent\.idx/);
});

// ---------------------------------------------------------------------------------------------
const Index = suite('FlatIndex arguments and lifetime');

Index('new FlatIndex({ dim: NaN }): ERR_VLK_INVALID_ARG naming options.dim', () => {
  expectCode(() => new FlatIndex({ dim: NaN }), 'ERR_VLK_INVALID_ARG', /options\.dim.*NaN/);
});

Index('add with a duplicate id in one call: ERR_VLK_INVALID_ARG, index unchanged', () => {
  const ix = new FlatIndex({ dim: D });
  expectCode(() => ix.add(q2(), [5, 5]), 'ERR_VLK_INVALID_ARG', /ids\[1\].*5 appears twice/);
  assert.is(ix.size, 0);
  ix.close();
});

Index('add with an id already present: ERR_VLK_INVALID_ARG naming the id', () => {
  const ix = new FlatIndex({ dim: D });
  ix.add(g7(), [0, 1, 2, 3, 4, 5, 6]);
  expectCode(() => ix.add(q2().subarray(0, D), [3]), 'ERR_VLK_INVALID_ARG', /id 3 is already in the index/);
  assert.is(ix.size, 7);
  ix.close();
});

Index('add with id -1: ERR_VLK_INVALID_ARG naming ids[0]', () => {
  const ix = new FlatIndex({ dim: D });
  expectCode(() => ix.add(q2().subarray(0, D), [-1]), 'ERR_VLK_INVALID_ARG', /ids\[0\].*-1/);
  ix.close();
});

Index('add with 1 id for 2 vectors: ERR_VLK_SHAPE naming both counts', () => {
  const ix = new FlatIndex({ dim: D });
  expectCode(() => ix.add(q2(), [1]), 'ERR_VLK_SHAPE', /ids.*length 1.*\(2\)/);
  ix.close();
});

Index('add a Float64Array: ERR_VLK_TYPE naming vectors', () => {
  const ix = new FlatIndex({ dim: D });
  expectCode(() => ix.add(new Float64Array(D) as any), 'ERR_VLK_TYPE', /vectors.*Float64Array/);
  ix.close();
});

Index('get of an absent id: ERR_VLK_INVALID_ARG naming the id', () => {
  const ix = new FlatIndex({ dim: D });
  ix.add(g7());
  expectCode(() => ix.get(99), 'ERR_VLK_INVALID_ARG', /id 99 is not in the index/);
  ix.close();
});

Index('has(1.5): ERR_VLK_INVALID_ARG naming the id', () => {
  const ix = new FlatIndex({ dim: D });
  expectCode(() => ix.has(1.5), 'ERR_VLK_INVALID_ARG', /id: 1\.5/);
  ix.close();
});

Index('searchSync with k = 8 on 7 vectors returns 7 results', () => {
  const ix = new FlatIndex({ dim: D });
  ix.add(g7());
  const r = ix.searchSync(q2(), { k: 8 });
  assert.equal(Array.from(r.counts), [7, 7]);
  ix.close();
});

Index('search with an already-aborted signal rejects with AbortError', async () => {
  const ix = new FlatIndex({ dim: D });
  ix.add(g7());
  const err = await ix.search(q2(), { k: 1, signal: AbortSignal.abort() }).then(() => undefined, (e) => e);
  assert.ok(err !== undefined, 'should reject');
  assert.is(err.name, 'AbortError');
  ix.close();
});

Index('add, searchSync and size after close(): ERR_VLK_INVALID_ARG "index is closed"', () => {
  const ix = new FlatIndex({ dim: D });
  ix.add(g7());
  ix.close();
  expectCode(() => ix.add(q2()), 'ERR_VLK_INVALID_ARG', /index is closed/);
  expectCode(() => ix.searchSync(q2(), { k: 1 }), 'ERR_VLK_INVALID_ARG', /index is closed/);
  expectCode(() => ix.size, 'ERR_VLK_INVALID_ARG', /index is closed/);
});

Buffers.run();
Resource.run();
Files.run();
Index.run();

// ---------------------------------------------------------------------------------------------
const Catalogue = suite('docs/bad-inputs.md cites real tests');

/** True when `name` is a test of `source`: a literal test title, or an errors.test.ts case `CODE: name`. */
function hasTest(source: string, name: string): boolean {
  const quoted = [`'${name}'`, `"${name}"`, `\`${name}\``].map((s) => s.replace(/\\/g, '\\\\'));
  if (quoted.some((s) => source.includes(s))) return true;
  const m = /^(ERR_VLK_[A-Z_]+): (.+)$/.exec(name);
  if (!m) return false;
  return source.split('\n').some((line) => line.includes(`name: '${m[2]}'`) || line.includes(`name: "${m[2]}"`) ? line.includes(`code: '${m[1]}'`) : false);
}

Catalogue('>= 60 rows, each citing a test that exists in the cited file', () => {
  const doc = readFileSync(join(repoRoot, 'docs', 'bad-inputs.md'), 'utf8');
  const rows = doc.split('\n').filter((l) => /^\|\s*\d+\s*\|/.test(l));
  assert.ok(rows.length >= 60, `${rows.length} rows`);
  const sources = new Map<string, string>();
  const numbers = new Set<number>();
  for (const row of rows) {
    const cells = row.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
    assert.is(cells.length, 6, `six columns: ${row}`);
    const n = Number(cells[0]);
    assert.not.ok(numbers.has(n), `row number ${n} repeated`);
    numbers.add(n);
    const m = /^`(test\/[\w.]+\.test\.ts)`: `(.+)`$/.exec(cells[5]);
    assert.ok(m, `row ${n}: test cell is not \`file\`: \`name\`: ${cells[5]}`);
    const [, file, name] = m!;
    if (!sources.has(file)) sources.set(file, readFileSync(join(repoRoot, file), 'utf8'));
    assert.ok(hasTest(sources.get(file)!, name), `row ${n}: no test "${name}" in ${file}`);
    const code = /ERR_VLK_[A-Z_]+|AbortError|accepted|clamped/.exec(cells[4]);
    assert.ok(code, `row ${n}: the outcome names no error code: ${cells[4]}`);
  }
});

Catalogue.run();
