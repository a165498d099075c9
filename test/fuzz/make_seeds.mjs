// Writes the seed corpus of the libFuzzer targets (test/fuzz/corpus/<target>/) from the built
// library: small valid inputs of every kind each reader accepts, plus a few near misses. The corpus
// is committed; rerun this after a format change: node test/fuzz/make_seeds.mjs
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const vlk = require('../../dist/cjs/index.js');

let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
const floats = (n) => Float32Array.from({ length: n }, () => Math.round(rand() * 16) / 4);

function corpus(target) {
  const dir = join(here, 'corpus', target);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let i = 0;
  return (name, bytes) => writeFileSync(join(dir, `${String(i++).padStart(2, '0')}-${name}`), bytes);
}

// ---- index files (FlatIndex.toBufferSync); the first byte is the target's mode byte ----------
{
  const put = corpus('fuzz_index_file');
  const cases = [
    { dim: 1, metric: 'ip', storage: 'f32', n: 0 },
    { dim: 3, metric: 'cosine', storage: 'f32', n: 4 },
    { dim: 5, metric: 'l2', storage: 'f32', n: 3, remove: true },
    { dim: 4, metric: 'ip', storage: 'bf16', n: 3 },
    { dim: 4, metric: 'ip', storage: 'bf16', n: 2, approximate: true },
    { dim: 6, metric: 'l2', storage: 'i8', n: 3 },
    { dim: 6, metric: 'cosine', storage: 'i8', n: 2, approximate: true },
  ];
  for (const c of cases) {
    const index = new vlk.FlatIndex({ dim: c.dim, metric: c.metric, storage: c.storage, approximate: c.approximate ?? false });
    if (c.n > 0) index.add({ data: floats(c.n * c.dim), rows: c.n, cols: c.dim }, Array.from({ length: c.n }, (_, r) => r * 7 + 1));
    if (c.remove) index.remove(8);
    const bytes = index.toBufferSync();
    index.close();
    const name = `${c.storage}${c.approximate ? '-approx' : ''}-${c.metric}-d${c.dim}-n${c.n}`;
    put(`${name}-fixcrc`, Buffer.concat([Buffer.from([0x00]), bytes]));
    put(`${name}-raw`, Buffer.concat([Buffer.from([0x01]), bytes]));
  }
}

// ---- safetensors (encodeSafetensors) -----------------------------------------------------------
{
  const put = corpus('fuzz_safetensors');
  put('empty', vlk.encodeSafetensors({}));
  put('f32-matrix', vlk.encodeSafetensors({ w: { shape: [2, 3], data: floats(6) } }));
  put(
    'mixed-metadata',
    vlk.encodeSafetensors(
      {
        a: { shape: [3], data: new Float64Array([1, -2, 0.5]) },
        b: { dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, 0xfc00]) },
        c: { dtype: 'BF16', shape: [1, 2], data: new Uint16Array([0x3f80, 0x7fc0]) },
        d: { shape: [], data: new Int32Array([7]) },
        e: { dtype: 'BOOL', shape: [2], data: new Uint8Array([0, 1]) },
        z: { shape: [0, 4], data: new Float32Array(0) },
      },
      { metadata: { format: 'pt', note: 'caf\u00e9 \\"quoted\\"' } },
    ),
  );
  put('f4-f8', vlk.encodeSafetensors({
    f4: { dtype: 'F4', shape: [4], data: new Uint8Array([0x12, 0x34]) },
    f8: { dtype: 'F8_E4M3', shape: [2], data: new Uint8Array([0x38, 0xb8]) },
    c64: { dtype: 'C64', shape: [1], data: new Float32Array([1, -1]) },
  }));
  put('i64-u64', vlk.encodeSafetensors({
    i: { shape: [2], data: new BigInt64Array([-1n, 2n ** 40n]) },
    u: { shape: [1], data: new BigUint64Array([2n ** 63n]) },
  }));
  // A hand-written header: unknown fields, escapes and spacing the writer would not produce.
  const json = '{"x" : {"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":[1,{"y":null}]},"__metadata__":{"k\\u00e9":"v"}}';
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(json.length));
  put('handwritten', Buffer.concat([head, Buffer.from(json, 'latin1'), Buffer.from([0, 0, 0x80, 0x3f])]));
}

// ---- .npy files (hand-built headers: every version, byte order, dtype kind, shape form) ------
{
  const put = corpus('fuzz_npy');
  const npy = (dict, data, major = 1) => {
    const start = major === 1 ? 10 : 12;
    let text = dict;
    const total = start + Buffer.byteLength(text, major === 3 ? 'utf8' : 'latin1') + 1;
    text += ' '.repeat((64 - (total % 64)) % 64) + '\n';
    const body = Buffer.from(text, major === 3 ? 'utf8' : 'latin1');
    const pre = Buffer.alloc(start);
    Buffer.from([0x93, ...Buffer.from('NUMPY'), major, 0]).copy(pre);
    if (major === 1) pre.writeUInt16LE(body.length, 8);
    else pre.writeUInt32LE(body.length, 8);
    return Buffer.concat([pre, body, data]);
  };
  const f32 = Buffer.from(floats(6).buffer);
  put('f4-2x3', npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f32));
  put('f8-be-fortran', npy("{'descr': '>f8', 'fortran_order': True, 'shape': (2, 1), }", Buffer.alloc(16, 0x3f)));
  put('u1-v2', npy("{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }", Buffer.from([1, 2, 3, 4, 5]), 2));
  put('i8-v3-utf8', npy("{'descr': '<i8', 'fortran_order': False, 'shape': (1L, 1), }\u3000", Buffer.alloc(8, 1), 3));
  put('bool-0d', npy("{'descr': '|b1', 'fortran_order': False, 'shape': (), }", Buffer.from([1])));
  put('f2-empty', npy('{"descr": "<f2", "fortran_order": False, "shape": (0, 4)}', Buffer.alloc(0)));
  put('structured', npy("{'descr': [('a', '<f4'), ('b', [('c', '<i2')])], 'fortran_order': False, 'shape': (1,), }", Buffer.alloc(6)));
  put('short-data', npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f32.subarray(0, 20)));
}

// ---- .fvecs / .ivecs / .bvecs (first byte: the target's mode byte) ------------------------------
{
  const put = corpus('fuzz_vecs');
  const vecs = (rows, dim, elem, value) => {
    const rec = 4 + dim * elem;
    const b = Buffer.alloc(rows * rec);
    for (let r = 0; r < rows; r++) {
      b.writeInt32LE(dim, r * rec);
      for (let c = 0; c < dim; c++) {
        if (elem === 1) b[r * rec + 4 + c] = value(r, c) & 0xff;
        else b.writeFloatLE(value(r, c), r * rec + 4 + c * 4);
      }
    }
    return b;
  };
  const v = (r, c) => r * 10 + c - 3.5;
  put('fvecs-3x4', Buffer.concat([Buffer.from([0x0c]), vecs(3, 4, 4, v)]));
  put('ivecs-2x5', Buffer.concat([Buffer.from([0x02]), vecs(2, 5, 4, v)]));
  put('bvecs-4x3-f32', Buffer.concat([Buffer.from([0x05]), vecs(4, 3, 1, (r, c) => r * 60 + c)]));
  put('bvecs-2x2-u8', Buffer.concat([Buffer.from([0x07]), vecs(2, 2, 1, (r, c) => 250 + r + c)]));
  const bad = vecs(3, 2, 4, v);
  bad.writeInt32LE(3, 12);
  put('fvecs-dim-mismatch', Buffer.concat([Buffer.from([0x00]), bad]));
  put('empty', Buffer.from([0x04]));
}

// ---- core arguments: a few structured starts (op byte, then the fields fuzz_core_args reads) ---
{
  const put = corpus('fuzz_core_args');
  const u16 = (v) => [v & 0xff, v >> 8];
  // search: q=2, n=5, d=3, metric ip, values, k flag 0 + k, tokens flag 0 + 1, no allow, no exclude.
  const values = Array.from({ length: (2 + 5) * 3 }, (_, i) => (i * 5) % 16);
  put('search-ip', Buffer.from([0, ...u16(2), ...u16(5), ...u16(3), ...u16(0), ...values, 0, ...u16(3), 0, ...u16(1), 0, 0]));
  put('search-l2-tokens', Buffer.from([3, ...u16(1), ...u16(6), ...u16(2), ...u16(2), ...values.slice(0, 14), 0, ...u16(2), 0, ...u16(2), 1, 1, 0, 1, 1]));
  put('rerank', Buffer.from([1, ...u16(2), ...u16(4), ...u16(2), ...u16(1), ...values.slice(0, 12), 0, ...u16(1), 0, ...u16(2), 0, ...u16(4), ...u16(3), 0, 1, 0, 2, 0, 3, 0, 0, ...u16(3)]));
  put('merge', Buffer.from([2, ...u16(2), ...u16(2), ...u16(0), ...u16(2), ...u16(1), ...u16(2), ...u16(3), 1, 2, 3, 4, 0, ...u16(1), ...u16(4), ...u16(5), 9, 8, 0, 0, ...u16(3)]));
}
console.log('seed corpus written under test/fuzz/corpus/');
