// Embedding files (test/vectors_io.test.ts): readNpy / readNpyAny / writeNpy, fvecs / ivecs / bvecs,
// raw float32, readVectors and the openVectors stream. Round trips at awkward sizes; .npy bytes
// built here for every byte order, order, dtype and header version; files numpy writes (skipped
// with a message without python3 + numpy); hand-built fvecs/ivecs/bvecs; the real files in
// ../shared/data (skipped when absent); streaming in odd block sizes; one malformed file per failure.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  openVectors,
  readBvecs,
  readFvecs,
  readIvecs,
  readNpy,
  readNpyAny,
  readRawF32,
  readVectors,
  VlkError,
  writeBvecs,
  writeFvecs,
  writeIvecs,
  writeNpy,
  writeRawF32,
  writeSafetensorsSync,
} from './helpers/lib';
import type { Vectors } from './helpers/lib';
import { readNpy as helperReadNpy } from './helpers/npy';
import { dataRoot } from './helpers/paths';
import { gaussian, gaussianMatrix, rng } from './helpers/random';

const dir = mkdtempSync(join(tmpdir(), 'vlk-vectors-io-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;
const tmp = (ext: string) => join(dir, `f${fileNo++}${ext}`);

// ---- helpers ------------------------------------------------------------------------------------

const SIZES: [number, number][] = [
  [1, 1],
  [7, 3],
  [513, 5],
  [2, 513],
  [0, 4],
];

/** Bytes of a .npy file with the given header text fields, built by hand (not by the library). */
function npyBytes(descr: string, fortran: boolean, shape: number[], payload: Uint8Array, version = 1): Buffer {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  const dict = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${dims}), }`;
  return npyRaw(dict, payload, version);
}

function npyRaw(dict: string, payload: Uint8Array, version = 1): Buffer {
  const pre = version === 1 ? 10 : 12;
  const pad = (64 - ((pre + dict.length + 1) % 64)) % 64;
  const text = Buffer.from(dict + ' '.repeat(pad) + '\n', version === 3 ? 'utf8' : 'latin1');
  const head = Buffer.alloc(pre);
  head[0] = 0x93;
  head.write('NUMPY', 1, 'latin1');
  head[6] = version;
  if (version === 1) head.writeUInt16LE(text.length, 8);
  else head.writeUInt32LE(text.length, 8);
  return Buffer.concat([head, text, payload]);
}

/** Values as bytes through a DataView setter, little- or big-endian. */
function encode(values: ArrayLike<number>, size: number, set: (dv: DataView, off: number, v: number, le: boolean) => void, le: boolean): Uint8Array {
  const out = new Uint8Array(values.length * size);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) set(dv, i * size, values[i], le);
  return out;
}
const f32 = (dv: DataView, o: number, v: number, le: boolean) => dv.setFloat32(o, v, le);
const f64 = (dv: DataView, o: number, v: number, le: boolean) => dv.setFloat64(o, v, le);
const i32 = (dv: DataView, o: number, v: number, le: boolean) => dv.setInt32(o, v, le);
const u16 = (dv: DataView, o: number, v: number, le: boolean) => dv.setUint16(o, v, le);

/** Row-major index of Fortran-order element k of `shape` (first axis fastest). */
function fortranToC(k: number, shape: number[]): number {
  let c = 0;
  let stride = 1;
  const idx: number[] = [];
  for (const d of shape) {
    idx.push(k % d);
    k = Math.floor(k / d);
  }
  for (let a = shape.length - 1; a >= 0; a--) {
    c += idx[a] * stride;
    stride *= shape[a];
  }
  return c;
}

/** IEEE binary16 bits to a number, by the format's definition. */
/** Byte equality; a failure names the first differing byte (a diff of long strings would be slow). */
function sameBytes(actual: ArrayBufferView, expected: ArrayBufferView, what = ''): void {
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const e = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (a.equals(e)) return;
  let i = 0;
  while (i < Math.min(a.length, e.length) && a[i] === e[i]) i++;
  assert.unreachable(`${what}: ${a.length} bytes vs ${e.length} expected; first difference at byte ${i} (${a[i]} vs ${e[i]})`);
}

function halfRef(h: number): number {
  const s = h >> 15 ? -1 : 1;
  const e = (h >> 10) & 31;
  const m = h & 1023;
  if (e === 0) return s * m * Math.pow(2, -24);
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * Math.pow(2, e - 15);
}

function sameF32(actual: Float32Array, expected: ArrayLike<number>, what: string): void {
  assert.is(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const e = Math.fround(expected[i]);
    const a = actual[i];
    if (Number.isNaN(e) ? !Number.isNaN(a) : !Object.is(a, e)) {
      assert.unreachable(`${what}: element ${i} is ${a}, expected ${e}`);
    }
  }
}

function thrown(fn: () => unknown): VlkError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, VlkError, String(err));
    return err as VlkError;
  }
  assert.unreachable('expected a VlkError, nothing was thrown');
  throw new Error('unreachable');
}

async function rejected(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  assert.unreachable('expected a rejection');
  throw new Error('unreachable');
}

async function collect(stream: AsyncIterable<Vectors>, cols: number): Promise<{ data: Float32Array; blocks: number[] }> {
  const parts: Float32Array[] = [];
  const blocks: number[] = [];
  for await (const b of stream) {
    assert.is(b.cols, cols);
    assert.is(b.data.length, b.rows * cols);
    parts.push(b.data);
    blocks.push(b.rows);
  }
  const data = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    data.set(p, o);
    o += p.length;
  }
  return { data, blocks };
}

function randomBytes(n: number, seed: number): Uint8Array {
  const u = rng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(u() * 256);
  return out;
}

function randomInts(n: number, seed: number): Int32Array {
  const u = rng(seed);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor((u() - 0.5) * 2 ** 32);
  return out;
}

/** fvecs/ivecs/bvecs bytes built record by record. */
function vecsBytes(rows: number[][], size: 1 | 4, kind: 'f' | 'i' | 'b'): Buffer {
  const parts: Buffer[] = [];
  for (const r of rows) {
    const b = Buffer.alloc(4 + r.length * size);
    b.writeInt32LE(r.length, 0);
    r.forEach((v, j) => {
      if (kind === 'f') b.writeFloatLE(v, 4 + 4 * j);
      else if (kind === 'i') b.writeInt32LE(v, 4 + 4 * j);
      else b[4 + j] = v;
    });
    parts.push(b);
  }
  return Buffer.concat(parts);
}

// ---- .npy ---------------------------------------------------------------------------------------

const Npy = suite('npy');

Npy('writeNpy then readNpy / readNpyAny: float32, int32, uint8 at awkward sizes, bit-exact', () => {
  for (const [rows, cols] of SIZES) {
    const data = gaussianMatrix(rows, cols, rows * 31 + cols);
    if (data.length > 2) {
      data[1] = NaN;
      data[2] = -0;
    }
    const p = tmp('.npy');
    writeNpy(p, { data, rows, cols });
    const back = readNpy(p);
    assert.is(back.rows, rows);
    assert.is(back.cols, cols);
    sameBytes(back.data, data, `f4 ${rows}x${cols}`);
    assert.is(back.converted, undefined);
    // Read straight into an allocation of the data's size: no header bytes, no copy.
    assert.is(back.data.byteOffset, 0);
    assert.is(back.data.buffer.byteLength, rows * cols * 4);
    assert.is(readFileSync(p).length % 64, (rows * cols * 4) % 64, 'header padded to 64 bytes');

    const ints = randomInts(rows * cols, rows + cols);
    writeNpy(p, { data: ints, rows, cols });
    const ia = readNpyAny(p);
    assert.equal([ia.dtype, ia.descr, ia.shape, ia.fortranOrder], ['int32', '<i4', [rows, cols], false]);
    sameBytes(ia.data, ints);

    const bytes = randomBytes(rows * cols, rows * 7 + cols);
    writeNpy(p, { data: bytes, rows, cols });
    const ba = readNpyAny(p);
    assert.equal([ba.dtype, ba.descr, ba.shape], ['uint8', '|u1', [rows, cols]]);
    sameBytes(ba.data, bytes);
  }
  // A plain Float32Array takes options.dim, as every operation does.
  const p = tmp('.npy');
  writeNpy(p, new Float32Array([1, 2, 3, 4, 5, 6]), { dim: 3 });
  const back = readNpy(p);
  assert.equal([back.rows, back.cols, Array.from(back.data)], [2, 3, [1, 2, 3, 4, 5, 6]]);
  assert.is(thrown(() => writeNpy(p, new Float32Array(6))).code, 'ERR_VLK_INVALID_ARG');
  assert.is(thrown(() => writeNpy(p, new Float32Array(6), { dim: 4 })).code, 'ERR_VLK_DIM_MISMATCH');
  assert.is(thrown(() => writeNpy(p, { data: new Int32Array(5), rows: 2, cols: 3 })).code, 'ERR_VLK_SHAPE');
  assert.is(thrown(() => writeNpy(p, { data: new Float64Array(6), rows: 2, cols: 3 } as never)).code, 'ERR_VLK_TYPE');
});

Npy('hand-built files: float32 either byte order, C or Fortran order, header versions 1-3, 1-D', () => {
  const shapes: number[][] = [[1, 1], [7, 3], [513, 5], [3, 513], [5], [0, 3]];
  for (const [si, shape] of shapes.entries()) {
    const n = shape.reduce((a, b) => a * b, 1);
    const g = gaussian(100 + si);
    const values = Array.from({ length: n }, () => g());
    const expectC = Float32Array.from(values);
    // For Fortran order the file holds the same logical array with the first axis fastest.
    const fortranValues = new Array<number>(n);
    for (let k = 0; k < n; k++) fortranValues[k] = values[fortranToC(k, shape)];
    for (const version of [1, 2, 3]) {
      for (const le of [true, false]) {
        for (const fortran of [false, true]) {
          const payload = encode(fortran ? fortranValues : values, 4, f32, le);
          const p = tmp('.npy');
          writeFileSync(p, npyBytes(le ? '<f4' : '>f4', fortran, shape, payload, version));
          const v = readNpy(p);
          const what = `v${version} ${le ? '<' : '>'}f4 ${fortran ? 'F' : 'C'} (${shape})`;
          assert.equal([v.rows, v.cols], shape.length === 1 ? [1, shape[0]] : shape, what);
          sameF32(v.data, expectC, what);
          assert.is(v.converted, undefined);
        }
      }
    }
  }
});

Npy('float64 and float16 convert to float32 (round to nearest / exact) and say so', () => {
  const shape = [9, 7];
  const g = gaussian(7);
  const values = Array.from({ length: 63 }, (_, i) => (i === 5 ? 1 + 2 ** -30 : i === 6 ? 1e300 : i === 7 ? NaN : g() * 1e3));
  for (const le of [true, false]) {
    for (const fortran of [false, true]) {
      const fileValues = fortran ? values.map((_, k) => values[fortranToC(k, shape)]) : values;
      const p = tmp('.npy');
      writeFileSync(p, npyBytes(le ? '<f8' : '>f8', fortran, shape, encode(fileValues, 8, f64, le)));
      const v = readNpy(p);
      assert.is(v.converted, 'float64->float32');
      sameF32(v.data, values, `${le ? '<' : '>'}f8 ${fortran ? 'F' : 'C'}`);
      const any = readNpyAny(p);
      assert.instance(any.data, Float64Array);
      assert.equal(Array.from(any.data as Float64Array), values);
    }
  }
  // Every float16 pattern, against the format's definition.
  const bits = Array.from({ length: 65536 }, (_, i) => i);
  const expected = bits.map(halfRef);
  for (const le of [true, false]) {
    const p = tmp('.npy');
    writeFileSync(p, npyBytes(le ? '<f2' : '>f2', false, [256, 256], encode(bits, 2, u16, le)));
    const v = readNpy(p);
    assert.is(v.converted, 'float16->float32');
    sameF32(v.data, expected, `${le ? '<' : '>'}f2`);
    const any = readNpyAny(p);
    assert.is(any.dtype, 'float16');
    assert.equal(Array.from(any.data as Uint16Array), bits);
  }
});

Npy('readNpyAny: integer and bool dtypes, either byte order, 3-D Fortran order, 0-d', () => {
  const shape = [3, 4, 5];
  const n = 60;
  const ints = randomInts(n, 9);
  const cases: [string, string, Uint8Array, (k: number) => number | bigint][] = [];
  const fortranOf = <T,>(a: ArrayLike<T>) => Array.from({ length: n }, (_, k) => a[fortranToC(k, shape)]);
  for (const fortran of [false, true]) {
    const order = fortran ? fortranOf(Array.from(ints)) : Array.from(ints);
    cases.push([`>i4 ${fortran}`, '>i4', encode(order, 4, i32, false), (k) => ints[k]]);
    const i64 = new DataView(new ArrayBuffer(8 * n));
    order.forEach((v, k) => i64.setBigInt64(8 * k, BigInt(v) * 3n, true));
    cases.push([`<i8 ${fortran}`, '<i8', new Uint8Array(i64.buffer), (k) => BigInt(ints[k]) * 3n]);
    const u8 = fortran ? fortranOf(Array.from(ints, (v) => v & 255)) : Array.from(ints, (v) => v & 255);
    cases.push([`|u1 ${fortran}`, '|u1', Uint8Array.from(u8), (k) => ints[k] & 255]);
    cases.push([`>u2 ${fortran}`, '>u2', encode(order.map((v) => v & 0xffff), 2, u16, false), (k) => ints[k] & 0xffff]);
  }
  let i = 0;
  for (const [name, descr, payload, want] of cases) {
    const fortran = name.endsWith('true');
    const p = tmp('.npy');
    writeFileSync(p, npyBytes(descr, fortran, shape, payload));
    const a = readNpyAny(p);
    assert.equal(a.shape, shape, name);
    assert.is(a.descr, descr);
    assert.is(a.fortranOrder, fortran);
    for (let k = 0; k < n; k++) {
      if (a.data[k] !== want(k)) assert.unreachable(`${name}: element ${k} is ${a.data[k]}, expected ${want(k)}`);
    }
    // Integers are not float vectors: readNpy names readNpyAny; readVectors converts 1- and 2-byte ones exactly.
    if (i++ < 4) {
      const e = thrown(() => readNpy(p));
      assert.is(e.code, 'ERR_VLK_TYPE');
      assert.ok(e.message.includes('readNpyAny') && e.message.includes(p), e.message);
    }
  }
  const p = tmp('.npy');
  writeFileSync(p, npyBytes('|u1', false, [10, 6], Uint8Array.from({ length: 60 }, (_, k) => (k * 37) & 255)));
  const v = readVectors(p);
  assert.is(v.converted, 'uint8->float32');
  sameF32(v.data, Array.from({ length: 60 }, (_, k) => (k * 37) & 255), 'u1 via readVectors');
  writeFileSync(p, npyBytes('<i4', false, [2, 2], new Uint8Array(16)));
  assert.is(thrown(() => readVectors(p)).code, 'ERR_VLK_TYPE');
  writeFileSync(p, npyRaw("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", encode([2.5], 8, f64, true)));
  const scalar = readNpyAny(p);
  assert.equal([scalar.shape, Array.from(scalar.data as Float64Array)], [[], [2.5]]);
  assert.is(thrown(() => readNpy(p)).code, 'ERR_VLK_SHAPE');
});

Npy.run();

// ---- files numpy writes -------------------------------------------------------------------------------

const Numpy = suite('files written by numpy');
const probe = spawnSync('python3', ['-c', 'import numpy; print(numpy.__version__)'], { encoding: 'utf8' });
const numpyVersion = probe.status === 0 ? probe.stdout.trim() : undefined;
if (!numpyVersion) {
  console.log(
    `numpy interop tests skipped: python3 with numpy is not available (${
      probe.error ? probe.error.message : (probe.stderr || '').trim().split('\n').pop()
    })`,
  );
}

// numpy converts the same float64 values to each layout, and writes the float32 values it expects
// (its own astype, C order) next to each file.
const NUMPY_SCRIPT = `
import sys, numpy as np
from numpy.lib import format as npf
d = sys.argv[1]
x = np.fromfile(d + '/src.f64', dtype='<f8').reshape(37, 11)
cases = {
  'le_f4': x.astype('<f4'), 'be_f4': x.astype('>f4'), 'fortran_f4': np.asfortranarray(x.astype('<f4')),
  'fortran_be_f8': np.asfortranarray(x.astype('>f8')), 'le_f8': x, 'le_f2': x.astype('<f2'), 'be_f2': x.astype('>f2'),
  'one_d': x[0].astype('<f4'),
}
for name, a in cases.items():
  np.save(d + '/' + name + '.npy', a)
  np.ascontiguousarray(a.astype('<f4')).tofile(d + '/' + name + '.expect')
with open(d + '/v2_f4.npy', 'wb') as f:
  npf.write_array(f, x.astype('<f4'), version=(2, 0))
x.astype('<f4').tofile(d + '/v2_f4.expect')
with open(d + '/v3_f4.npy', 'wb') as f:
  npf.write_array(f, x.astype('<f4'), version=(3, 0))
x.astype('<f4').tofile(d + '/v3_f4.expect')
np.save(d + '/ids_i4.npy', (x * 1000).astype('<i4'))
np.save(d + '/ids_fortran_i8.npy', np.asfortranarray((x * 1e6).astype('>i8')))
# Files the library wrote, read back by numpy.
w = np.load(d + '/ours_f4.npy'); assert w.dtype == np.dtype('<f4') and w.shape == (37, 11)
assert np.array_equal(w, x.astype('<f4'))
w = np.load(d + '/ours_i4.npy'); assert w.dtype == np.dtype('<i4') and np.array_equal(w, (x * 1000).astype('<i4'))
print('ok')
`;

Numpy('numpy .npy files (<f4, >f4, Fortran, <f8, <f2, >f2, 1-D, v2, v3, <i4, >i8) read as numpy reads them', () => {
  if (!numpyVersion) return;
  const sub = mkdtempSync(join(dir, 'numpy-'));
  const g = gaussian(2024);
  const x = Float64Array.from({ length: 37 * 11 }, () => g() * 10);
  writeFileSync(join(sub, 'src.f64'), Buffer.from(x.buffer));
  writeNpy(join(sub, 'ours_f4.npy'), { data: Float32Array.from(x), rows: 37, cols: 11 });
  writeNpy(join(sub, 'ours_i4.npy'), { data: Int32Array.from(x, (v) => Math.trunc(v * 1000)), rows: 37, cols: 11 });
  const r = spawnSync('python3', ['-c', NUMPY_SCRIPT, sub], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout.trim(), 'ok');
  const notes: Record<string, string | undefined> = {
    le_f8: 'float64->float32',
    fortran_be_f8: 'float64->float32',
    le_f2: 'float16->float32',
    be_f2: 'float16->float32',
  };
  for (const name of ['le_f4', 'be_f4', 'fortran_f4', 'fortran_be_f8', 'le_f8', 'le_f2', 'be_f2', 'one_d', 'v2_f4', 'v3_f4']) {
    const v = readNpy(join(sub, `${name}.npy`));
    const raw = readFileSync(join(sub, `${name}.expect`));
    const expect = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
    assert.equal([v.rows, v.cols], name === 'one_d' ? [1, 11] : [37, 11], name);
    sameBytes(v.data, expect, name);
    assert.is(v.converted, notes[name], name);
  }
  const ids = readNpyAny(join(sub, 'ids_i4.npy'));
  assert.equal([ids.dtype, ids.shape], ['int32', [37, 11]]);
  assert.equal(Array.from(ids.data as Int32Array), Array.from(x, (v) => Math.trunc(v * 1000)));
  const big = readNpyAny(join(sub, 'ids_fortran_i8.npy'));
  assert.equal([big.dtype, big.descr, big.fortranOrder], ['int64', '>i8', true]);
  assert.equal(Array.from(big.data as BigInt64Array), Array.from(x, (v) => BigInt(Math.trunc(v * 1e6))));
});

Numpy.run();

// ---- fvecs / ivecs / bvecs ------------------------------------------------------------------------------

const Vecs = suite('fvecs, ivecs, bvecs');

Vecs('readers against hand-built records; writers produce the same bytes', () => {
  for (const [rows, cols] of SIZES.filter(([r]) => r > 0)) {
    const g = gaussian(rows * 3 + cols);
    const fr = Array.from({ length: rows }, () => Array.from({ length: cols }, () => Math.fround(g())));
    const ir = Array.from({ length: rows }, (_, i) => Array.from(randomInts(cols, i + cols)));
    const br = Array.from({ length: rows }, (_, i) => Array.from(randomBytes(cols, i * 5 + cols)));
    const pf = tmp('.fvecs');
    const pi = tmp('.ivecs');
    const pb = tmp('.bvecs');
    writeFileSync(pf, vecsBytes(fr, 4, 'f'));
    writeFileSync(pi, vecsBytes(ir, 4, 'i'));
    writeFileSync(pb, vecsBytes(br, 1, 'b'));
    const f = readFvecs(pf);
    const i = readIvecs(pi);
    const b = readBvecs(pb);
    assert.equal([f.rows, f.cols, i.rows, i.cols, b.rows, b.cols], [rows, cols, rows, cols, rows, cols]);
    sameF32(f.data, fr.flat(), `fvecs ${rows}x${cols}`);
    assert.equal(Array.from(i.data), ir.flat());
    assert.instance(b.data, Uint8Array);
    assert.equal(Array.from(b.data), br.flat());
    assert.is(f.data.buffer.byteLength, rows * cols * 4, 'one allocation of the final size');

    const wf = tmp('.fvecs');
    const wi = tmp('.ivecs');
    const wb = tmp('.bvecs');
    writeFvecs(wf, f);
    writeIvecs(wi, i);
    writeBvecs(wb, b);
    sameBytes(readFileSync(wf), readFileSync(pf), wf);
    sameBytes(readFileSync(wi), readFileSync(pi), wi);
    sameBytes(readFileSync(wb), readFileSync(pb), wb);
  }
  // An empty file holds no records.
  const empty = tmp('.fvecs');
  writeFvecs(empty, { data: new Float32Array(0), rows: 0, cols: 4 });
  assert.is(readFileSync(empty).length, 0);
  assert.equal([readFvecs(empty).rows, readFvecs(empty).cols], [0, 0]);
  assert.is(thrown(() => writeFvecs(tmp('.fvecs'), { data: new Float32Array(0), rows: 3, cols: 0 })).code, 'ERR_VLK_SHAPE');
  assert.is(thrown(() => writeIvecs(tmp('.ivecs'), { data: new Float32Array(4), rows: 2, cols: 2 } as never)).code, 'ERR_VLK_TYPE');
});

Vecs.run();

// ---- raw, readVectors ---------------------------------------------------------------------------------

const Any = suite('raw float32 and readVectors');

Any('raw: round trip at awkward sizes, rows checked', () => {
  for (const [rows, cols] of SIZES) {
    const data = gaussianMatrix(rows, cols, 50 + rows + cols);
    const p = tmp('.f32');
    writeRawF32(p, { data, rows, cols });
    assert.is(readFileSync(p).length, rows * cols * 4);
    const v = readRawF32(p, { cols });
    assert.equal([v.rows, v.cols], [rows, cols]);
    sameBytes(v.data, data);
    sameBytes(readRawF32(p, { rows, cols }).data, data);
    sameBytes(readVectors(p, { cols }).data, data);
  }
  const p = tmp('.f32');
  writeRawF32(p, new Float32Array(12), { dim: 4 });
  const e = thrown(() => readRawF32(p, { rows: 4, cols: 4 }));
  assert.is(e.code, 'ERR_VLK_SHAPE');
  assert.ok(e.message.includes('48') && e.message.includes('64'), e.message);
  assert.is(thrown(() => readVectors(p)).code, 'ERR_VLK_INVALID_ARG', 'raw without cols');
});

Any('readVectors: every format by extension and by option, the same values; shape checks', () => {
  const rows = 29;
  const cols = 13;
  const data = gaussianMatrix(rows, cols, 77);
  const m = { data, rows, cols };
  const files: [string, Record<string, unknown>][] = [];
  const pn = tmp('.npy');
  writeNpy(pn, m);
  files.push([pn, {}]);
  const pf = tmp('.fvecs');
  writeFvecs(pf, m);
  files.push([pf, {}]);
  const pr = tmp('.raw');
  writeRawF32(pr, m);
  files.push([pr, { cols }]);
  const ps = tmp('.safetensors');
  writeSafetensorsSync(ps, { emb: { shape: [rows, cols], data }, bias: { shape: [cols], data: new Float32Array(cols) } });
  files.push([ps, {}]);
  for (const [p, o] of files) {
    const v = readVectors(p, o);
    assert.equal([v.rows, v.cols], [rows, cols], p);
    sameBytes(v.data, data, p);
    // Without the extension the format option decides.
    const format = { '.npy': 'npy', '.fvecs': 'fvecs', '.raw': 'raw', '.safetensors': 'safetensors' }[p.slice(p.lastIndexOf('.'))]!;
    const plain = tmp('.bin');
    writeFileSync(plain, readFileSync(p));
    sameBytes(readVectors(plain, { ...o, format: format as never }).data, data);
    assert.is(thrown(() => readVectors(plain, o)).code, 'ERR_VLK_INVALID_ARG');
    assert.is(thrown(() => readVectors(p, { ...o, cols: cols + 1 })).code, format === 'raw' ? 'ERR_VLK_SHAPE' : 'ERR_VLK_DIM_MISMATCH');
    assert.is(thrown(() => readVectors(p, { ...o, rows: rows + 1 })).code, 'ERR_VLK_SHAPE');
  }
  // bvecs converts exactly.
  const bytes = randomBytes(rows * cols, 3);
  const pb = tmp('.bvecs');
  writeBvecs(pb, { data: bytes, rows, cols });
  const b = readVectors(pb);
  assert.is(b.converted, 'uint8->float32');
  sameF32(b.data, Array.from(bytes), 'bvecs');
  // safetensors: the named tensor, F64 / F16 / BF16 converted, ambiguity refused.
  const ps2 = tmp('.safetensors');
  const d64 = Float64Array.from(data, (v) => v / 3);
  const h16 = Uint16Array.from({ length: 6 }, (_, i) => 0x3c00 + i * 0x111);
  writeSafetensorsSync(ps2, {
    a: { shape: [rows, cols], data: d64 },
    b: { dtype: 'F16', shape: [2, 3], data: h16 },
    c: { dtype: 'BF16', shape: [1, 2], data: new Uint16Array([0x3f80, 0xc040]) },
    ids: { shape: [2, 2], data: new Int32Array(4) },
  });
  const e = thrown(() => readVectors(ps2));
  assert.is(e.code, 'ERR_VLK_INVALID_ARG');
  assert.ok(e.message.includes(ps2) && e.message.includes("'a'") && e.message.includes('options.tensor'), e.message);
  const a = readVectors(ps2, { tensor: 'a' });
  assert.is(a.converted, 'float64->float32');
  sameF32(a.data, Array.from(d64), 'F64 tensor');
  const h = readVectors(ps2, { tensor: 'b' });
  assert.is(h.converted, 'float16->float32');
  sameF32(h.data, Array.from(h16, halfRef), 'F16 tensor');
  assert.equal(Array.from(readVectors(ps2, { tensor: 'c' }).data), [1, -3]);
  assert.is(thrown(() => readVectors(ps2, { tensor: 'ids' })).code, 'ERR_VLK_TYPE');
  assert.is(thrown(() => readVectors(ps2, { tensor: 'nope' })).code, 'ERR_VLK_INVALID_ARG');
  assert.is(thrown(() => readVectors(pn, { format: 'csv' as never })).code, 'ERR_VLK_INVALID_ARG');
});

Any.run();

// ---- streaming ----------------------------------------------------------------------------------------

const Stream = suite('openVectors');

Stream('streams equal readVectors in odd block sizes (npy f4 either order, f8, f2, u1; fvecs; bvecs; raw)', async () => {
  const rows = 1031;
  const cols = 17;
  const data = gaussianMatrix(rows, cols, 99);
  const m = { data, rows, cols };
  const files: [string, Record<string, unknown>][] = [];
  const add = (ext: string, write: (p: string) => void, o: Record<string, unknown> = {}) => {
    const p = tmp(ext);
    write(p);
    files.push([p, o]);
  };
  add('.npy', (p) => writeNpy(p, m));
  add('.npy', (p) => writeFileSync(p, npyBytes('>f4', false, [rows, cols], encode(data, 4, f32, false))));
  add('.npy', (p) => writeFileSync(p, npyBytes('<f8', false, [rows, cols], encode(Array.from(data, (v) => v / 7), 8, f64, true))));
  add('.npy', (p) => writeFileSync(p, npyBytes('>f2', false, [rows, cols], encode(Array.from(data, (_, i) => i & 0x7bff), 2, u16, false))));
  add('.npy', (p) => writeNpy(p, { data: randomBytes(rows * cols, 4), rows, cols }));
  add('.fvecs', (p) => writeFvecs(p, m));
  add('.bvecs', (p) => writeBvecs(p, { data: randomBytes(rows * cols, 5), rows, cols }));
  add('.f32', (p) => writeRawF32(p, m), { cols });
  for (const [p, o] of files) {
    const whole = readVectors(p, o);
    for (const blockRows of [1, 7, 513, rows, rows + 5]) {
      const stream = openVectors(p, { ...o, blockRows });
      assert.equal([stream.rows, stream.cols, stream.blockRows, stream.converted], [rows, cols, blockRows, whole.converted]);
      const got = await collect(stream, cols);
      sameBytes(got.data, whole.data, `${p} blockRows ${blockRows}`);
      assert.is(got.blocks.length, Math.ceil(rows / blockRows));
      assert.ok(got.blocks.slice(0, -1).every((n) => n === blockRows));
    }
    // Re-iterable: each iteration reads the file again.
    const s = openVectors(p, o);
    sameBytes((await collect(s, cols)).data, whole.data, `${p} again`);
    sameBytes((await collect(s, cols)).data, whole.data, `${p} again`);
  }
});

Stream('abort, refusals, and a file that changes under the stream', async () => {
  const p = tmp('.fvecs');
  writeFvecs(p, { data: gaussianMatrix(40, 3, 1), rows: 40, cols: 3 });
  const ac = new AbortController();
  let seen = 0;
  const err = await rejected(
    (async () => {
      for await (const b of openVectors(p, { blockRows: 8, signal: ac.signal })) {
        seen += b.rows;
        if (seen === 16) ac.abort();
      }
    })(),
  );
  assert.is(err.name, 'AbortError');
  assert.is(seen, 16);
  const aborted = AbortSignal.abort();
  assert.is((await rejected(collect(openVectors(p, { signal: aborted }), 3))).name, 'AbortError');
  assert.is(thrown(() => openVectors(p, { blockRows: 0 })).code, 'ERR_VLK_INVALID_ARG');
  const pf = tmp('.npy');
  writeFileSync(pf, npyBytes('<f4', true, [3, 2], new Uint8Array(24)));
  const ef = thrown(() => openVectors(pf));
  assert.is(ef.code, 'ERR_VLK_INVALID_ARG');
  assert.ok(ef.message.includes(pf) && ef.message.includes('fortran_order'), ef.message);
  const ps = tmp('.safetensors');
  writeSafetensorsSync(ps, { x: { shape: [1, 1], data: new Float32Array(1) } });
  assert.is(thrown(() => openVectors(ps)).code, 'ERR_VLK_INVALID_ARG');
  // A record rewritten with another dim after the stream opened: named by index while iterating.
  const stream = openVectors(p, { blockRows: 8 });
  const bytes = readFileSync(p);
  bytes.writeInt32LE(4, 21 * 16);
  writeFileSync(p, bytes);
  const bad = await rejected(collect(stream, 3));
  assert.is(bad.code, 'ERR_VLK_CORRUPT');
  assert.ok(bad.message.includes(p) && bad.message.includes('record 21 dim'), bad.message);
  // Truncated after opening: the file ended short.
  const pr = tmp('.f32');
  writeRawF32(pr, new Float32Array(40), { dim: 4 });
  const s2 = openVectors(pr, { cols: 4, blockRows: 3 });
  writeFileSync(pr, new Uint8Array(60));
  const short = await rejected(collect(s2, 4));
  assert.is(short.code, 'ERR_VLK_CORRUPT');
  assert.ok(short.message.includes(pr) && short.message.includes('data (rows 3..5)'), short.message);
});

Stream.run();

// ---- malformed files --------------------------------------------------------------------------------

const Bad = suite('malformed files: typed errors naming the file and the field');

const f4x6 = new Uint8Array(24);
const MALFORMED: { name: string; ext: string; bytes: Uint8Array; read: (p: string) => unknown; code: string; field: string }[] = [
  { name: 'bad magic', ext: '.npy', bytes: Buffer.from('PK\x03\x04 not numpy at all'), read: readNpy, code: 'ERR_VLK_CORRUPT', field: 'magic' },
  { name: 'shorter than the preamble', ext: '.npy', bytes: Buffer.from([0x93, 0x4e]), read: readNpy, code: 'ERR_VLK_CORRUPT', field: 'magic' },
  { name: 'unknown version', ext: '.npy', bytes: (() => { const b = npyBytes('<f4', false, [2, 3], f4x6); b[6] = 4; return b; })(), read: readNpy, code: 'ERR_VLK_CORRUPT', field: 'version' },
  { name: 'truncated header', ext: '.npy', bytes: npyBytes('<f4', false, [2, 3], f4x6).subarray(0, 40), read: readNpy, code: 'ERR_VLK_CORRUPT', field: 'header' },
  { name: 'header dict not parseable', ext: '.npy', bytes: npyRaw("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3}", f4x6), read: readNpy, code: 'ERR_VLK_CORRUPT', field: 'header dict' },
  { name: 'header key missing', ext: '.npy', bytes: npyRaw("{'descr': '<f4', 'fortran_order': False, }", f4x6), read: readNpy, code: 'ERR_VLK_CORRUPT', field: "header 'shape'" },
  { name: 'fortran_order not a bool', ext: '.npy', bytes: npyRaw("{'descr': '<f4', 'fortran_order': 'no', 'shape': (2, 3), }", f4x6), read: readNpy, code: 'ERR_VLK_CORRUPT', field: "header 'fortran_order'" },
  { name: 'unsupported dtype', ext: '.npy', bytes: npyBytes('<c8', false, [2, 3], new Uint8Array(48)), read: readNpy, code: 'ERR_VLK_TYPE', field: "header 'descr'" },
  { name: 'structured dtype', ext: '.npy', bytes: npyRaw("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", f4x6), read: readNpyAny, code: 'ERR_VLK_TYPE', field: "header 'descr'" },
  { name: 'data shorter than the shape', ext: '.npy', bytes: npyBytes('<f4', false, [2, 3], new Uint8Array(20)), read: readNpy, code: 'ERR_VLK_CORRUPT', field: 'data' },
  { name: 'data longer than the shape', ext: '.npy', bytes: npyBytes('<f4', false, [2, 3], new Uint8Array(28)), read: readNpyAny, code: 'ERR_VLK_CORRUPT', field: 'data' },
  { name: '3-D as vectors', ext: '.npy', bytes: npyBytes('<f4', false, [1, 2, 3], f4x6), read: readNpy, code: 'ERR_VLK_SHAPE', field: "header 'shape'" },
  // Records 0 and 1 have dim 2; record 2 (the same 12 bytes long) says dim 3.
  { name: 'fvecs dim differs', ext: '.fvecs', bytes: Buffer.concat([vecsBytes([[1, 2], [3, 4]], 4, 'f'), vecsBytes([[5, 6, 7]], 4, 'f').subarray(0, 12)]), read: readFvecs, code: 'ERR_VLK_CORRUPT', field: 'record 2 dim' },
  { name: 'fvecs trailing partial record', ext: '.fvecs', bytes: vecsBytes([[1, 2], [3, 4]], 4, 'f').subarray(0, 20), read: readFvecs, code: 'ERR_VLK_CORRUPT', field: 'record 1' },
  { name: 'ivecs dim <= 0', ext: '.ivecs', bytes: Buffer.from([0, 0, 0, 0, 1, 0, 0, 0]), read: readIvecs, code: 'ERR_VLK_CORRUPT', field: 'record 0 dim' },
  { name: 'bvecs shorter than a dim', ext: '.bvecs', bytes: Buffer.from([3, 0]), read: readBvecs, code: 'ERR_VLK_CORRUPT', field: 'record 0 dim' },
  { name: 'raw size not a multiple of cols x 4', ext: '.f32', bytes: new Uint8Array(20), read: (p) => readRawF32(p, { cols: 3 }), code: 'ERR_VLK_SHAPE', field: 'size' },
];

Bad('one malformed file per failure mode', () => {
  for (const c of MALFORMED) {
    const p = tmp(c.ext);
    writeFileSync(p, c.bytes);
    const e = thrown(() => c.read(p));
    assert.is(e.code, c.code, `${c.name}: ${e.message}`);
    assert.ok(e.message.includes(p), `${c.name}: names the file: ${e.message}`);
    assert.ok(e.message.includes(`: ${c.field}: `), `${c.name}: names the field ${c.field}: ${e.message}`);
  }
  // The same files through readVectors give the same errors.
  for (const c of MALFORMED.filter((x) => x.ext !== '.ivecs' && x.read !== readNpyAny)) {
    const p = tmp(c.ext);
    writeFileSync(p, c.bytes);
    const e = thrown(() => readVectors(p, c.ext === '.f32' ? { cols: 3 } : {}));
    assert.is(e.code, c.code, `readVectors ${c.name}: ${e.message}`);
  }
  const missing = join(dir, 'no-such-file.npy');
  const io = thrown(() => readNpy(missing));
  assert.is(io.code, 'ERR_VLK_IO');
  assert.ok(io.message.includes(missing) && io.message.includes('ENOENT'), io.message);
  assert.is(thrown(() => readFvecs(dir)).code, 'ERR_VLK_IO', 'a folder');
  assert.is(thrown(() => readNpy(42 as never)).code, 'ERR_VLK_TYPE');
});

Bad('writes are atomic: a failed write leaves the old file, no temporary files remain', () => {
  const sub = mkdtempSync(join(dir, 'atomic-'));
  const p = join(sub, 'x.npy');
  writeNpy(p, { data: new Float32Array([1, 2]), rows: 1, cols: 2 });
  const before = readFileSync(p).toString('hex');
  assert.is(thrown(() => writeNpy(p, { data: new Float32Array(3), rows: 1, cols: 2 })).code, 'ERR_VLK_SHAPE');
  assert.is(readFileSync(p).toString('hex'), before);
  writeNpy(p, { data: new Float32Array([3, 4, 5]), rows: 3, cols: 1 });
  assert.equal(Array.from(readNpy(p).data), [3, 4, 5]);
  assert.equal(readdirSync(sub), ['x.npy']);
  const e = thrown(() => writeFvecs(join(sub, 'missing', 'y.fvecs'), { data: new Float32Array(2), rows: 1, cols: 2 }));
  assert.is(e.code, 'ERR_VLK_IO');
  assert.ok(e.message.includes(join(sub, 'missing', 'y.fvecs')), e.message);
  assert.equal(readdirSync(sub), ['x.npy']);
});

Bad('header bytes that are not printable are escaped in the message', () => {
  const controls = /[\x00-\x1f\x7f-\x9f]/;
  const cases: { bytes: Uint8Array; message: string }[] = [
    {
      bytes: npyRaw("{'descr': '<f4',\x07 'x\x85': True}", f4x6),
      message: `header dict: expected a quoted string at character 16 of "{'descr': '<f4',\\u0007 'x\\u0085': True}"`,
    },
    {
      bytes: npyRaw("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'a\x01\x9f': True}", f4x6),
      message: "header dict: unexpected key 'a\\u0001\\u009f' (a .npy header has descr, fortran_order, shape)",
    },
    {
      bytes: npyBytes('<f4\x1b', false, [6], f4x6),
      message: "header 'descr': unsupported dtype '<f4\\u001b' (supported: float16/32/64, int8-64, uint8-64, bool, in either byte order)",
    },
    {
      bytes: (() => { const b = npyBytes('<f4', false, [6], f4x6); b[5] = 0x58; return b; })(),
      message: 'magic: expected \\x93NUMPY, found "\\u0093NUMPX"',
    },
  ];
  for (const c of cases) {
    const p = tmp('.npy');
    writeFileSync(p, c.bytes);
    const e = thrown(() => readNpyAny(p));
    assert.is(e.message, `${p}: ${c.message}`);
    assert.not.ok(controls.test(e.message), e.message);
  }
});

Bad.run();

// ---- real files ---------------------------------------------------------------------------------------

const Real = suite('real files in ../shared/data');
const bigann = join(dataRoot, 'bigann10k-tiledb');
const fmnist = join(dataRoot, 'fashion-mnist-small-tiledb');
if (!existsSync(bigann) || !existsSync(fmnist)) console.log(`real-file tests skipped: ${dataRoot} has no bigann10k-tiledb / fashion-mnist-small-tiledb`);

Real('BIGANN 10k uint8 and Fashion-MNIST float32 .npy: shapes from their READMEs, values as an independent reader', async () => {
  if (!existsSync(bigann) || !existsSync(fmnist)) return;
  const base = readNpyAny(join(bigann, 'base_u8.npy'));
  assert.equal([base.dtype, base.shape], ['uint8', [10000, 128]]);
  sameBytes(base.data, helperReadNpy(join(bigann, 'base_u8.npy')).data, 'base_u8');
  const asF32 = readVectors(join(bigann, 'queries_u8.npy'));
  assert.equal([asF32.rows, asF32.cols, asF32.converted], [100, 128, 'uint8->float32']);
  // README: the 100 queries are base rows 0..99.
  sameF32(asF32.data, Array.from(base.data.subarray(0, 100 * 128) as Uint8Array), 'queries = base rows 0..99');
  const gt = readNpyAny(join(bigann, 'groundtruth_l2_top100.npy'));
  assert.equal([gt.dtype, gt.shape], ['int32', [100, 100]]);
  assert.equal(Array.from((gt.data as Int32Array).subarray(0, 5)), [0, 2, 5398, 5993, 6044]);

  const fb = readNpy(join(fmnist, 'base_f32.npy'));
  assert.equal([fb.rows, fb.cols], [1000, 784]);
  sameBytes(fb.data, helperReadNpy(join(fmnist, 'base_f32.npy')).data, 'base_f32');
  const fq = readVectors(join(fmnist, 'queries_f32.npy'));
  assert.equal([fq.rows, fq.cols], [500, 784]);
  const fgt = readNpyAny(join(fmnist, 'groundtruth_l2_top100.npy'));
  assert.equal(fgt.shape, [500, 100]);
  assert.equal(Array.from((fgt.data as Int32Array).subarray(0, 5)), [111, 884, 142, 651, 573]);
  const streamed = await collect(openVectors(join(fmnist, 'base_f32.npy'), { blockRows: 333 }), 784);
  sameBytes(streamed.data, fb.data);
  const bs = await collect(openVectors(join(bigann, 'base_u8.npy'), { blockRows: 4097 }), 128);
  sameF32(bs.data, Array.from(base.data as Uint8Array), 'bigann streamed as float32');
});

Real.run();
