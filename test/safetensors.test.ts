// safetensors (test/safetensors.test.ts): readSafetensors / readSafetensorsSync / writeSafetensors /
// writeSafetensorsSync / encodeSafetensors. Round trips through files and buffers for every dtype
// (bit-exact, natural TypedArrays, scalars, empty shapes, unicode and awkward names, metadata);
// float32 conversion of every F16 and BF16 pattern and of F64; dtype inference; typed errors
// naming the tensor, the field and the file or "buffer"; atomic writes; AbortSignal; the binding's
// own checks; and interoperability with the Python reference implementation (safetensors + numpy)
// in both directions, skipped with a message when python3 or the packages are missing.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  binding,
  encodeSafetensors,
  readSafetensors,
  readSafetensorsSync,
  VlkError,
  writeSafetensors,
  writeSafetensorsSync,
} from './helpers/lib';
import type { SafetensorsDtype, SafetensorsTensorInput, SafetensorsTypedArray } from './helpers/lib';

const dir = mkdtempSync(join(tmpdir(), 'vlk-safetensors-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

// ---- helpers ------------------------------------------------------------------------------------

const hex = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');

function rngBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

type Ctor = new (buffer: ArrayBuffer) => SafetensorsTypedArray;
const CTOR: Record<SafetensorsDtype, [Ctor, number]> = {
  F64: [Float64Array, 64],
  F32: [Float32Array, 32],
  F16: [Uint16Array, 16],
  BF16: [Uint16Array, 16],
  I64: [BigInt64Array, 64],
  I32: [Int32Array, 32],
  I16: [Int16Array, 16],
  I8: [Int8Array, 8],
  U64: [BigUint64Array, 64],
  U32: [Uint32Array, 32],
  U16: [Uint16Array, 16],
  U8: [Uint8Array, 8],
  BOOL: [Uint8Array, 8],
  C64: [Float32Array, 64],
  F8_E5M2: [Uint8Array, 8],
  F8_E4M3: [Uint8Array, 8],
  F8_E8M0: [Uint8Array, 8],
  F8_E4M3FNUZ: [Uint8Array, 8],
  F8_E5M2FNUZ: [Uint8Array, 8],
  F4: [Uint8Array, 4],
  F6_E2M3: [Uint8Array, 6],
  F6_E3M2: [Uint8Array, 6],
};
const ALL_DTYPES = Object.keys(CTOR) as SafetensorsDtype[];

/** A tensor of `dtype` and `shape` with random bytes in its natural TypedArray. */
function randomTensor(dtype: SafetensorsDtype, shape: number[], seed: number): Required<SafetensorsTensorInput> {
  const [C, bits] = CTOR[dtype];
  const elements = shape.reduce((a, b) => a * b, 1);
  const bytes = rngBytes((elements * bits) / 8, seed);
  if (dtype === 'BOOL') bytes.forEach((b, i) => (bytes[i] = b & 1));
  return { dtype, shape, data: new C(bytes.buffer as ArrayBuffer) };
}

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<VlkError> {
  try {
    if (typeof p === 'function') p();
    else await p;
  } catch (err) {
    assert.instance(err, VlkError);
    return err as VlkError;
  }
  throw new Error('expected an error');
}

function f16ToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function sameFloat(a: number, b: number): boolean {
  return Number.isNaN(a) ? Number.isNaN(b) : Object.is(a, b);
}

function tempFiles(d: string): string[] {
  return readdirSync(d).filter((f) => f.includes('.tmp-'));
}

// ---- round trips --------------------------------------------------------------------------------
const RoundTrip = suite('round trips');

RoundTrip('every dtype, through buffers and files, sync and async, bit-exact in its natural TypedArray', async () => {
  const tensors: Record<string, Required<SafetensorsTensorInput>> = {};
  ALL_DTYPES.forEach((d, i) => {
    tensors[`t_${d}`] = randomTensor(d, [3, 4], 10 + i);
    tensors[`empty_${d}`] = randomTensor(d, [0, 7], 50 + i);
  });
  const metadata = { format: 'pt', note: 'every dtype' };
  const bytes = encodeSafetensors(tensors, { metadata });
  const file = join(dir, 'all.safetensors');
  const fileSync = join(dir, 'all-sync.safetensors');
  await writeSafetensors(file, tensors, { metadata });
  writeSafetensorsSync(pathToFileURL(fileSync), tensors, { metadata });
  assert.equal(readFileSync(file), bytes, 'writeSafetensors writes the encodeSafetensors bytes');
  assert.equal(readFileSync(fileSync), bytes, 'writeSafetensorsSync too');
  const reads = [
    readSafetensorsSync(bytes),
    await readSafetensors(bytes),
    readSafetensorsSync(file),
    await readSafetensors(file),
    await readSafetensors(pathToFileURL(file)),
  ];
  for (const [r, back] of reads.entries()) {
    assert.equal(Object.keys(back.tensors).sort(), Object.keys(tensors).sort(), `read ${r}: names`);
    assert.equal(back.metadata, metadata, `read ${r}: metadata`);
    for (const [name, t] of Object.entries(tensors)) {
      const got = back.tensors[name];
      assert.is(got.dtype, t.dtype, `${r} ${name}: dtype`);
      assert.equal(got.shape, t.shape, `${r} ${name}: shape`);
      assert.is(Object.prototype.toString.call(got.data), Object.prototype.toString.call(t.data), `${r} ${name}: array type`);
      assert.is(hex(got.data), hex(t.data), `${r} ${name}: data`);
      assert.is(got.data.byteOffset, 0, `${r} ${name}: own buffer`);
      assert.is(got.data.buffer.byteLength, got.data.byteLength, `${r} ${name}: own buffer`);
    }
  }
});

RoundTrip('scalars, empty shapes, unicode and awkward names, metadata', () => {
  const tensors: Record<string, SafetensorsTensorInput> = {
    scalar: { shape: [], data: new Float64Array([Math.PI]) },
    zeros: { shape: [0], data: new Float32Array(0) },
    zeros3: { dtype: 'BF16', shape: [2, 0, 3], data: new Uint16Array(0) },
    'ü名 😀': { shape: [2], data: new Int32Array([-1, 2 ** 31 - 1]) },
    'quote"back\\slash\nnewline': { shape: [1], data: new Uint8Array([7]) },
    __proto__x: { shape: [1], data: new Int8Array([-8]) },
    'layers.0.attn.q_proj.weight': { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
  };
  Object.defineProperty(tensors, '__proto__', {
    value: { shape: [1], data: new Uint32Array([0xffffffff]) },
    enumerable: true,
  });
  const metadata = { z: 'last', '': 'empty key', json: '{"a": [1]}\n\t\\', 名: '😀' };
  const back = readSafetensorsSync(encodeSafetensors(tensors, { metadata }));
  assert.equal(Object.keys(back.tensors).sort(), Object.keys(tensors).sort());
  assert.ok(Object.prototype.hasOwnProperty.call(back.tensors, '__proto__'), '"__proto__" is an own tensor name');
  assert.equal(Array.from(back.tensors.__proto__.data as Uint32Array), [0xffffffff]);
  assert.equal(back.tensors.scalar.shape, []);
  assert.equal(Array.from(back.tensors.scalar.data as Float64Array), [Math.PI]);
  assert.equal(back.tensors.zeros3.shape, [2, 0, 3]);
  assert.is(back.tensors.zeros3.data.length, 0);
  assert.equal(Array.from(back.tensors['ü名 😀'].data as Int32Array), [-1, 2 ** 31 - 1]);
  assert.equal(back.metadata, metadata);
  assert.equal(Object.keys(back.metadata), Object.keys(metadata).sort(), 'metadata comes back sorted by key');
  // Nothing at all.
  const empty = encodeSafetensors({});
  assert.is(empty.toString('hex'), '08000000000000007b7d202020202020', 'the reference implementation\'s empty file');
  assert.equal(readSafetensorsSync(empty), { tensors: {}, metadata: {} });
});

RoundTrip('dtype is inferred from the TypedArray; Buffer, Uint8ClampedArray and offset views work', () => {
  const big = Buffer.alloc(64, 3);
  const tensors: Record<string, SafetensorsTensorInput> = {
    f32: { shape: [1], data: new Float32Array([1]) },
    f64: { shape: [1], data: new Float64Array([1]) },
    i32: { shape: [1], data: new Int32Array([1]) },
    u32: { shape: [1], data: new Uint32Array([1]) },
    i64: { shape: [1], data: new BigInt64Array([1n]) },
    u64: { shape: [1], data: new BigUint64Array([1n]) },
    i16: { shape: [1], data: new Int16Array([1]) },
    u16: { shape: [1], data: new Uint16Array([1]) },
    i8: { shape: [1], data: new Int8Array([1]) },
    u8: { shape: [1], data: new Uint8Array([1]) },
    buffer: { shape: [4], data: big.subarray(10, 14) },
    clamped: { shape: [2], data: new Uint8ClampedArray([255, 0]) },
    offset: { shape: [2], data: new Float32Array(new Float32Array([9, 8, 7, 6]).buffer, 4, 2) },
  };
  const back = readSafetensorsSync(encodeSafetensors(tensors));
  const dtypes = Object.fromEntries(Object.entries(back.tensors).map(([k, v]) => [k, v.dtype]));
  assert.equal(dtypes, {
    f32: 'F32', f64: 'F64', i32: 'I32', u32: 'U32', i64: 'I64', u64: 'U64', i16: 'I16', u16: 'U16',
    i8: 'I8', u8: 'U8', buffer: 'U8', clamped: 'U8', offset: 'F32',
  });
  assert.equal(Array.from(back.tensors.clamped.data as Uint8Array), [255, 0]);
  assert.equal(Array.from(back.tensors.offset.data as Float32Array), [8, 7]);
  assert.equal(Array.from(back.tensors.buffer.data as Uint8Array), [3, 3, 3, 3]);
  // A source buffer at an offset inside a larger one.
  const bytes = encodeSafetensors({ x: { shape: [3], data: new Float32Array([1, 2, 3]) } });
  const padded = Buffer.concat([Buffer.alloc(5, 0xee), bytes, Buffer.alloc(3)]);
  const view = padded.subarray(5, 5 + bytes.length);
  assert.equal(Array.from(readSafetensorsSync(view).tensors.x.data as Float32Array), [1, 2, 3]);
});

RoundTrip('the writer orders tensors like the reference implementation and aligns every tensor', () => {
  const bytes = encodeSafetensors({
    a_u8: { shape: [3], data: new Uint8Array(3) },
    b_f64: { shape: [3], data: new Float64Array(3) },
    c_f16: { dtype: 'F16', shape: [5], data: new Uint16Array(5) },
    d_f32: { shape: [1], data: new Float32Array(1) },
    e_i64: { shape: [1], data: new BigInt64Array(1) },
  });
  const n = Number(bytes.readBigUInt64LE(0));
  assert.is(n % 8, 0, 'header padded to a multiple of 8');
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; data_offsets: number[] }>;
  assert.equal(Object.keys(header), ['e_i64', 'b_f64', 'd_f32', 'c_f16', 'a_u8']);
  const size: Record<string, number> = { F64: 8, I64: 8, F32: 4, F16: 2, U8: 1 };
  for (const [name, t] of Object.entries(header)) assert.is(t.data_offsets[0] % size[t.dtype], 0, `${name} aligned`);
  assert.equal(Object.keys(readSafetensorsSync(bytes).tensors), ['e_i64', 'b_f64', 'd_f32', 'c_f16', 'a_u8'], 'read in data order');
});

RoundTrip.run();

// ---- float32 conversion -------------------------------------------------------------------------
const Convert = suite("{ dtype: 'float32' }");

Convert('every F16 and BF16 pattern converts exactly; F64 rounds; F32 is unchanged', async () => {
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const f64 = Float64Array.from([0.1, -1e300, 1e300, 1e-50, -0, 3, NaN, Infinity, 2 ** -149, 16777217]);
  const f32 = new Float32Array(rngBytes(64, 3).buffer);
  const bytes = encodeSafetensors({
    h: { dtype: 'F16', shape: [256, 256], data: all },
    b: { dtype: 'BF16', shape: [65536], data: all },
    d: { shape: [10], data: f64 },
    f: { shape: [16], data: f32 },
  });
  for (const back of [readSafetensorsSync(bytes, { dtype: 'float32' }), await readSafetensors(bytes, { dtype: 'float32' })]) {
    const { h, b, d, f } = back.tensors;
    for (const t of [h, b, d, f]) {
      assert.is(t.dtype, 'F32');
      assert.instance(t.data, Float32Array);
    }
    assert.equal(h.shape, [256, 256]);
    const bits = new DataView(new ArrayBuffer(4));
    let bad = 0;
    for (let i = 0; i < 65536; i++) {
      if (!sameFloat(h.data[i], Math.fround(f16ToNumber(i)))) bad++;
      bits.setUint32(0, i << 16);
      if (!sameFloat(b.data[i], bits.getFloat32(0))) bad++;
    }
    assert.is(bad, 0, 'F16 and BF16 patterns');
    assert.ok(Array.from(d.data).every((v, i) => sameFloat(v, Math.fround(f64[i]))), 'F64 rounded to nearest');
    assert.is(hex(f.data), hex(f32), 'F32 bit for bit');
  }
});

Convert.run();

// ---- errors -------------------------------------------------------------------------------------
const Errors = suite('errors');

function corrupt(header: string, dataBytes: number): Buffer {
  const h = Buffer.from(header, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, Buffer.alloc(dataBytes)]);
}

const T = (dtype: string, shape: string, offsets: string) => `{"dtype":${dtype},"shape":${shape},"data_offsets":${offsets}}`;

const CORRUPT: { name: string; bytes: Buffer; message: RegExp[] }[] = [
  { name: 'too short', bytes: Buffer.from([1, 2, 3]), message: [/3 bytes/, /8-byte header length/] },
  { name: 'header length too large', bytes: corrupt('{}', 0).fill(0xff, 0, 8), message: [/header length/, /exceeds the limit/] },
  { name: 'header length past the end', bytes: (() => { const b = corrupt('{}', 0); b.writeBigUInt64LE(100n); return b; })(), message: [/does not fit/] },
  { name: 'not JSON', bytes: corrupt('{"w":', 0), message: [/invalid JSON/] },
  { name: 'trailing comma', bytes: corrupt(`{"w":${T('"F32"', '[1]', '[0,4]')},}`, 4), message: [/invalid JSON/, /trailing commas/] },
  { name: 'bad escape', bytes: corrupt(`{"w\\x":${T('"F32"', '[1]', '[0,4]')}}`, 4), message: [/invalid escape/] },
  { name: 'unknown dtype', bytes: corrupt(`{"w":${T('"F33"', '[1]', '[0,4]')}}`, 4), message: [/tensor "w"/, /unknown dtype "F33"/] },
  { name: 'negative dimension', bytes: corrupt(`{"w":${T('"F32"', '[-1]', '[0,4]')}}`, 4), message: [/tensor "w"/, /shape\[0\]/, /negative/] },
  { name: 'float dimension', bytes: corrupt(`{"w":${T('"F32"', '[1.5]', '[0,4]')}}`, 4), message: [/shape\[0\]/, /not an integer/] },
  { name: 'offsets past the end', bytes: corrupt(`{"w":${T('"F32"', '[2]', '[0,8]')}}`, 4), message: [/tensor "w"/, /past the end of the data section/] },
  { name: 'size mismatch', bytes: corrupt(`{"w":${T('"F32"', '[2]', '[0,4]')}}`, 4), message: [/tensor "w"/, /span 4 bytes/, /take 8/] },
  { name: 'overlap', bytes: corrupt(`{"a":${T('"F32"', '[2]', '[0,8]')},"b":${T('"F32"', '[2]', '[4,12]')}}`, 12), message: [/tensor "b"/, /overlap tensor "a"/] },
  { name: 'hole', bytes: corrupt(`{"a":${T('"F32"', '[1]', '[0,4]')},"b":${T('"F32"', '[1]', '[8,12]')}}`, 12), message: [/belong to no tensor/] },
  { name: 'trailing data', bytes: corrupt(`{"a":${T('"F32"', '[1]', '[0,4]')}}`, 8), message: [/after the last tensor/] },
  { name: 'duplicate name', bytes: corrupt(`{"a":${T('"F32"', '[1]', '[0,4]')},"a":${T('"F32"', '[1]', '[0,4]')}}`, 4), message: [/duplicate tensor name "a"/] },
  { name: 'metadata not strings', bytes: corrupt('{"__metadata__":{"epoch":1}}', 0), message: [/__metadata__\["epoch"\]/, /expected a string/] },
  { name: 'missing field', bytes: corrupt('{"w":{"dtype":"F32","shape":[1]}}', 4), message: [/tensor "w"/, /missing field "data_offsets"/] },
];

Errors('malformed files and buffers: ERR_VLK_CORRUPT naming the file or buffer, the tensor and the field', async () => {
  for (const [i, c] of CORRUPT.entries()) {
    const file = join(dir, `corrupt-${i}.safetensors`);
    writeFileSync(file, c.bytes);
    const errors = [
      await codeOf(() => readSafetensorsSync(c.bytes)),
      await codeOf(readSafetensors(c.bytes)),
      await codeOf(() => readSafetensorsSync(file)),
      await codeOf(readSafetensors(file)),
    ];
    for (const [j, e] of errors.entries()) {
      assert.is(e.code, 'ERR_VLK_CORRUPT', `${c.name} (${j}): ${e.message}`);
      assert.match(e.message, j < 2 ? /^safetensors buffer: / : `safetensors file '${file}'`, `${c.name} (${j})`);
      for (const m of c.message) assert.match(e.message, m, `${c.name} (${j}): ${e.message}`);
    }
  }
});

Errors('bad read arguments, missing files and float32 for integer tensors', async () => {
  for (const source of [123, null, undefined, {}, '', new Float32Array(4), new ArrayBuffer(8)]) {
    const p = readSafetensors(source as never);
    assert.instance(p, Promise, 'async errors are rejections');
    assert.is((await codeOf(p)).code, 'ERR_VLK_TYPE');
    assert.is((await codeOf(() => readSafetensorsSync(source as never))).code, 'ERR_VLK_TYPE');
  }
  const bytes = encodeSafetensors({ ok: { shape: [1], data: new Float32Array(1) }, ids: { shape: [2], data: new BigInt64Array(2) } });
  assert.is((await codeOf(readSafetensors(bytes, { dtype: 'float16' as never }))).code, 'ERR_VLK_INVALID_ARG');
  assert.is((await codeOf(() => readSafetensorsSync(bytes, 5 as never))).code, 'ERR_VLK_TYPE');
  const conv = await codeOf(readSafetensors(bytes, { dtype: 'float32' }));
  assert.is(conv.code, 'ERR_VLK_TYPE');
  assert.match(conv.message, /tensor "ids"/);
  assert.match(conv.message, /I64/);
  const missing = join(dir, 'missing.safetensors');
  for (const e of [await codeOf(readSafetensors(missing)), await codeOf(() => readSafetensorsSync(missing))]) {
    assert.is(e.code, 'ERR_VLK_IO');
    assert.match(e.message, missing);
  }
  assert.is((await codeOf(readSafetensors(dir))).code, 'ERR_VLK_IO', 'a directory');
  assert.is((await codeOf(readSafetensors(new URL('https://example.com/x')))).code, 'ERR_VLK_TYPE');
});

Errors('bad write arguments: typed errors naming the tensor', async () => {
  const f32 = new Float32Array(6);
  const cases: { name: string; code: string; message: RegExp; tensors: unknown; options?: unknown }[] = [
    { name: 'tensors not an object', code: 'ERR_VLK_TYPE', message: /tensors/, tensors: [1, 2] },
    { name: 'tensors null', code: 'ERR_VLK_TYPE', message: /tensors/, tensors: null },
    { name: 'entry not an object', code: 'ERR_VLK_TYPE', message: /tensors\["w"\]/, tensors: { w: 5 } },
    { name: 'data not a typed array', code: 'ERR_VLK_TYPE', message: /tensors\["w"\]\.data/, tensors: { w: { shape: [2], data: [1, 2] } } },
    { name: 'data a DataView', code: 'ERR_VLK_TYPE', message: /tensors\["w"\]\.data/, tensors: { w: { shape: [2], data: new DataView(new ArrayBuffer(8)) } } },
    { name: 'unknown dtype', code: 'ERR_VLK_INVALID_ARG', message: /tensors\["w"\]\.dtype.*"F31"/, tensors: { w: { dtype: 'F31', shape: [6], data: f32 } } },
    { name: 'dtype not a string', code: 'ERR_VLK_INVALID_ARG', message: /tensors\["w"\]\.dtype/, tensors: { w: { dtype: 32, shape: [6], data: f32 } } },
    { name: 'F16 from a Float32Array', code: 'ERR_VLK_TYPE', message: /tensors\["h"\]\.data.*F16.*Uint16Array.*Float32Array/, tensors: { h: { dtype: 'F16', shape: [6], data: f32 } } },
    { name: 'I64 from a Float64Array', code: 'ERR_VLK_TYPE', message: /BigInt64Array/, tensors: { n: { dtype: 'I64', shape: [1], data: new Float64Array(1) } } },
    { name: 'shape product != length', code: 'ERR_VLK_SHAPE', message: /tensors\["w"\].*5 elements.*\[2, 3\].*needs 6/, tensors: { w: { shape: [2, 3], data: new Float32Array(5) } } },
    { name: 'C64 length', code: 'ERR_VLK_SHAPE', message: /tensors\["c"\].*needs 4.*2 float32 values/, tensors: { c: { dtype: 'C64', shape: [2], data: new Float32Array(2) } } },
    { name: 'F4 odd count', code: 'ERR_VLK_SHAPE', message: /tensors\["q"\].*whole bytes/, tensors: { q: { dtype: 'F4', shape: [3], data: new Uint8Array(2) } } },
    { name: 'negative dimension', code: 'ERR_VLK_SHAPE', message: /tensors\["w"\]\.shape\[1\]/, tensors: { w: { shape: [6, -1], data: f32 } } },
    { name: 'fractional dimension', code: 'ERR_VLK_SHAPE', message: /tensors\["w"\]\.shape\[0\]/, tensors: { w: { shape: [1.5], data: f32 } } },
    { name: 'shape not an array', code: 'ERR_VLK_SHAPE', message: /tensors\["w"\]\.shape/, tensors: { w: { shape: 6, data: f32 } } },
    { name: 'empty name', code: 'ERR_VLK_INVALID_ARG', message: /name is empty/, tensors: { '': { shape: [6], data: f32 } } },
    { name: 'reserved name', code: 'ERR_VLK_INVALID_ARG', message: /__metadata__/, tensors: { __metadata__: { shape: [6], data: f32 } } },
    { name: 'metadata value not a string', code: 'ERR_VLK_TYPE', message: /options\.metadata\["epoch"\]/, tensors: {}, options: { metadata: { epoch: 3 } } },
    { name: 'metadata not an object', code: 'ERR_VLK_TYPE', message: /options\.metadata/, tensors: {}, options: { metadata: 'x' } },
    { name: 'options not an object', code: 'ERR_VLK_TYPE', message: /options/, tensors: {}, options: 7 },
  ];
  const file = join(dir, 'bad-write.safetensors');
  for (const c of cases) {
    const errors = [
      await codeOf(() => encodeSafetensors(c.tensors as never, c.options as never)),
      await codeOf(() => writeSafetensorsSync(file, c.tensors as never, c.options as never)),
      await codeOf(writeSafetensors(file, c.tensors as never, c.options as never)),
    ];
    for (const e of errors) {
      assert.is(e.code, c.code, `${c.name}: ${e.message}`);
      assert.match(e.message, c.message, `${c.name}: ${e.message}`);
    }
  }
  assert.not.ok(existsSync(file), 'no failed write left a file');
  for (const path of ['', 42, null]) {
    assert.is((await codeOf(writeSafetensors(path as never, {}))).code, 'ERR_VLK_TYPE');
  }
  const io = await codeOf(writeSafetensors(join(dir, 'no', 'such', 'dir', 'x.safetensors'), { w: { shape: [1], data: new Float32Array(1) } }));
  assert.is(io.code, 'ERR_VLK_IO');
  assert.match(io.message, /no\/such\/dir/);
});

Errors('the binding repeats the checks with the same codes', () => {
  const call = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      return (err as { code?: string }).code;
    }
    return 'no error';
  };
  const t = (over: Record<string, unknown>) => [{ name: 'w', dtype: 'F32', shape: [2], data: new Float32Array(2), ...over }];
  assert.is(call(() => binding.readSafetensorsSync(123 as never, false)), 'ERR_VLK_TYPE');
  assert.is(call(() => binding.readSafetensorsSync('', false)), 'ERR_VLK_INVALID_ARG');
  assert.is(call(() => binding.readSafetensorsSync(new Uint8Array(3), false)), 'ERR_VLK_CORRUPT');
  assert.is(call(() => binding.encodeSafetensorsSync(t({}), [])), 'no error');
  assert.is(call(() => binding.encodeSafetensorsSync(t({ data: new Float32Array(3) }), [])), 'ERR_VLK_SHAPE');
  assert.is(call(() => binding.encodeSafetensorsSync(t({ dtype: 'X' }), [])), 'ERR_VLK_INVALID_ARG');
  assert.is(call(() => binding.encodeSafetensorsSync(t({ data: new Float64Array(2) }), [])), 'ERR_VLK_TYPE');
  assert.is(call(() => binding.encodeSafetensorsSync(t({ shape: [-2] }), [])), 'ERR_VLK_SHAPE');
  assert.is(call(() => binding.encodeSafetensorsSync(t({ data: [1, 2] }), [])), 'ERR_VLK_TYPE');
  assert.is(call(() => binding.encodeSafetensorsSync(t({ name: '' }), [])), 'ERR_VLK_INVALID_ARG');
  assert.is(call(() => binding.encodeSafetensorsSync([...t({}), ...t({})], [])), 'ERR_VLK_INVALID_ARG', 'duplicate name');
  assert.is(call(() => binding.encodeSafetensorsSync({} as never, [])), 'ERR_VLK_TYPE');
  assert.is(call(() => binding.encodeSafetensorsSync([], ['k'])), 'ERR_VLK_TYPE');
  assert.is(call(() => binding.encodeSafetensorsSync([], ['k', 'v', 'k', 'w'])), 'ERR_VLK_INVALID_ARG');
});

Errors.run();

// ---- atomic writes and abort ----------------------------------------------------------------------
const Atomic = suite('atomic writes and AbortSignal');

Atomic('a failed or aborted write leaves the existing file as it was and no temporary file', async () => {
  const sub = join(dir, 'atomic');
  mkdirSync(sub);
  const file = join(sub, 'm.safetensors');
  await writeSafetensors(file, { w: { shape: [4], data: new Float32Array([1, 2, 3, 4]) } }, { metadata: { v: '1' } });
  const before = readFileSync(file);
  await codeOf(writeSafetensors(file, { w: { shape: [5], data: new Float32Array(4) } }));
  const ac = new AbortController();
  ac.abort(new Error('stop'));
  const aborted = await codeOf(writeSafetensors(file, { w: { shape: [1], data: new Float32Array(1) } }, { signal: ac.signal }));
  assert.is(aborted.name, 'AbortError');
  assert.is(aborted.code, 'ABORT_ERR');
  assert.equal(readFileSync(file), before);
  assert.equal(readdirSync(sub), ['m.safetensors']);
  assert.equal(tempFiles(sub), []);
  // Aborted reads too.
  const r = await codeOf(readSafetensors(file, { signal: ac.signal }));
  assert.is(r.name, 'AbortError');
  assert.is((await codeOf(readSafetensors(file, { signal: 'x' as never }))).code, 'ERR_VLK_INVALID_ARG');
  // A large async read with an abort racing it either completes or rejects with AbortError.
  const big = join(sub, 'big.safetensors');
  writeSafetensorsSync(big, { x: { shape: [4 << 20], data: new Float32Array(4 << 20).fill(1.5) } });
  const ac2 = new AbortController();
  const pending = readSafetensors(big, { signal: ac2.signal });
  setImmediate(() => ac2.abort());
  try {
    const back = await pending;
    assert.is(back.tensors.x.data[(4 << 20) - 1], 1.5);
  } catch (err) {
    assert.is((err as Error).name, 'AbortError');
  }
  // A successful rewrite replaces the file.
  writeSafetensorsSync(file, { v: { shape: [1], data: new Int8Array([5]) } });
  assert.equal(Object.keys(readSafetensorsSync(file).tensors), ['v']);
  assert.equal(tempFiles(sub), []);
});

Atomic.run();

// ---- interoperability with the Python reference implementation ------------------------------------
const Interop = suite('interoperability with Python safetensors');

const probe = spawnSync('python3', ['-c', 'import safetensors, numpy; print(safetensors.__version__)'], { encoding: 'utf8' });
const python = probe.status === 0 ? probe.stdout.trim() : undefined;
if (!python) {
  console.log(
    `safetensors interop tests skipped: python3 with the safetensors and numpy packages is not available (${
      probe.error ? probe.error.message : (probe.stderr || '').trim().split('\n').pop()
    })`,
  );
}

function py(script: string, ...args: string[]): string {
  const r = spawnSync('python3', ['-c', script, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`python3 failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

// Tensors for the interop checks: every dtype with random bytes, plus known values.
function interopTensors(): Record<string, Required<SafetensorsTensorInput>> {
  const t: Record<string, Required<SafetensorsTensorInput>> = {};
  ALL_DTYPES.forEach((d, i) => (t[`r_${d}`] = randomTensor(d, [2, 4], 200 + i)));
  t.known_f32 = { dtype: 'F32', shape: [2, 2], data: new Float32Array([1.5, -2, 0.25, 1e30]) };
  t.known_i64 = { dtype: 'I64', shape: [3], data: new BigInt64Array([-(2n ** 63n), 2n ** 40n, -1n]) };
  t.known_f16 = { dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, 0xc100]) };
  t.known_bool = { dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) };
  t.scalar = { dtype: 'F64', shape: [], data: new Float64Array([Math.E]) };
  t.empty = { dtype: 'U16', shape: [3, 0], data: new Uint16Array(0) };
  t['ü名'] = { dtype: 'I32', shape: [1], data: new Int32Array([-7]) };
  return t;
}

// Python side: every tensor's dtype, shape and raw bytes (safetensors.deserialize: any dtype), the
// metadata, and numpy's values for a few numpy dtypes (safe_open(framework='np').get_tensor).
const DESCRIBE_PY = `
import json, sys
import numpy as np
import safetensors
from safetensors import safe_open
path = sys.argv[1]
raw = {name: {"dtype": t["dtype"], "shape": list(t["shape"]), "hex": bytes(t["data"]).hex()}
       for name, t in safetensors.deserialize(open(path, "rb").read())}
with safe_open(path, framework="np") as f:
    meta = f.metadata() or {}
with safe_open(path, framework="np") as f:
    known = {name: f.get_tensor(name) for name in
             ["known_f32", "known_i64", "known_f16", "known_bool", "scalar", "empty", "\\u00fc\\u540d"]}
values = {
    "known_f32": [float(v) for v in known["known_f32"].ravel()],
    "known_i64": [str(int(v)) for v in known["known_i64"].ravel()],
    "known_f16": [float(v) for v in known["known_f16"].ravel()],
    "known_bool": [bool(v) for v in known["known_bool"].ravel()],
    "scalar": float(known["scalar"]), "scalar_shape": list(known["scalar"].shape),
    "empty_shape": list(known["empty"].shape),
    "u": int(known["\\u00fc\\u540d"][0]),
}
print(json.dumps({"raw": raw, "meta": meta, "values": values}))
`;

(python ? Interop : Interop.skip)(`Node writes, Python reads (safetensors ${python ?? 'missing'})`, async () => {
  const tensors = interopTensors();
  const metadata = { format: 'pt', 名前: 'ü "quoted"\n' };
  const file = join(dir, 'node-written.safetensors');
  await writeSafetensors(file, tensors, { metadata });
  const out = JSON.parse(py(DESCRIBE_PY, file)) as {
    raw: Record<string, { dtype: string; shape: number[]; hex: string }>;
    meta: Record<string, string>;
    values: Record<string, unknown>;
  };
  assert.equal(Object.keys(out.raw).sort(), Object.keys(tensors).sort());
  for (const [name, t] of Object.entries(tensors)) {
    assert.is(out.raw[name].dtype, t.dtype, `${name}: dtype`);
    assert.equal(out.raw[name].shape, t.shape, `${name}: shape`);
    assert.is(out.raw[name].hex, hex(t.data), `${name}: bytes`);
  }
  assert.equal(out.meta, metadata);
  assert.equal(out.values.known_f32, [1.5, -2, 0.25, Math.fround(1e30)]);
  assert.equal(out.values.known_i64, [String(-(2n ** 63n)), String(2n ** 40n), '-1']);
  assert.equal(out.values.known_f16, [1, -2.5]);
  assert.equal(out.values.known_bool, [true, false, true]);
  assert.is(out.values.scalar, Math.E);
  assert.equal(out.values.scalar_shape, []);
  assert.equal(out.values.empty_shape, [3, 0]);
  assert.is(out.values.u, -7);
});

// Python writes with the reference serializer (numpy arrays; TensorSpec for the dtypes numpy
// lacks) and reports what it wrote; also its bytes for a set encodeSafetensors can reproduce.
const WRITE_PY = `
import json, sys
import numpy as np
from safetensors import TensorSpec, serialize
from safetensors.numpy import save_file
path, same_path = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(7)
arrays = {
    "f64": rng.standard_normal((3, 2)),
    "f32": rng.standard_normal((2, 3)).astype(np.float32),
    "f16": rng.standard_normal(5).astype(np.float16),
    "i64": np.array([-(2**63), 2**62, -1], dtype=np.int64),
    "u64": np.array([2**64 - 1, 0], dtype=np.uint64),
    "i32": np.arange(-3, 3, dtype=np.int32).reshape(2, 3),
    "u32": np.array([2**32 - 1], dtype=np.uint32),
    "i16": np.array([-32768, 32767], dtype=np.int16),
    "u16": np.array([65535], dtype=np.uint16),
    "i8": np.array([-128, 127], dtype=np.int8),
    "u8": np.arange(4, dtype=np.uint8),
    "bool": np.array([True, False, True]),
    "c64": np.array([1 + 2j, -3.5j], dtype=np.complex64),
    "scalar": np.array(2.5, dtype=np.float32),
    "empty": np.zeros((0, 4), dtype=np.float32),
    "\\u00fc\\u540d": np.array([9], dtype=np.int8),
}
save_file(arrays, path, metadata={"source": "python", "k": "\\u540d"})
info = {name: {"shape": list(a.shape), "hex": a.tobytes().hex(),
               "f32hex": a.astype(np.float32).tobytes().hex() if a.dtype.kind == "f" else None}
        for name, a in arrays.items()}
bf16 = np.array([0x3F80, 0xC000, 0x7F80, 0x0001], dtype=np.uint16)
f8 = np.array([0x38, 0xB8, 0x7E], dtype=np.uint8)
one = np.array([1.0, -2.0], dtype=np.float32)
specs = {
    "bf": TensorSpec(dtype="bfloat16", shape=[4], data_ptr=bf16.ctypes.data, data_len=bf16.nbytes),
    "f8": TensorSpec(dtype="float8_e4m3fn", shape=[3], data_ptr=f8.ctypes.data, data_len=f8.nbytes),
    "w": TensorSpec(dtype="float32", shape=[2], data_ptr=one.ctypes.data, data_len=one.nbytes),
}
open(same_path, "wb").write(serialize(specs, metadata={"format": "pt"}))
print(json.dumps(info))
`;

(python ? Interop : Interop.skip)(`Python writes, Node reads; the encoder matches the reference byte for byte`, async () => {
  const file = join(dir, 'python-written.safetensors');
  const same = join(dir, 'python-same.safetensors');
  const info = JSON.parse(py(WRITE_PY, file, same)) as Record<string, { shape: number[]; hex: string; f32hex: string | null }>;
  const expectDtype: Record<string, SafetensorsDtype> = {
    f64: 'F64', f32: 'F32', f16: 'F16', i64: 'I64', u64: 'U64', i32: 'I32', u32: 'U32', i16: 'I16',
    u16: 'U16', i8: 'I8', u8: 'U8', bool: 'BOOL', c64: 'C64', scalar: 'F32', empty: 'F32', ü名: 'I8',
  };
  for (const back of [readSafetensorsSync(file), await readSafetensors(file), readSafetensorsSync(readFileSync(file))]) {
    assert.equal(back.metadata, { k: '名', source: 'python' });
    assert.equal(Object.keys(back.tensors).sort(), Object.keys(info).sort());
    for (const [name, want] of Object.entries(info)) {
      const t = back.tensors[name];
      assert.is(t.dtype, expectDtype[name], `${name}: dtype`);
      assert.equal(t.shape, want.shape, `${name}: shape`);
      assert.is(hex(t.data), want.hex, `${name}: bytes`);
    }
    assert.is((back.tensors.i64.data as BigInt64Array)[0], -(2n ** 63n));
    assert.is((back.tensors.u64.data as BigUint64Array)[0], 2n ** 64n - 1n);
  }
  // float32 conversion equals numpy's astype(float32) (F16 exact, F64 rounded to nearest).
  const onlyFloats = join(dir, 'python-floats.safetensors');
  const all = readSafetensorsSync(file);
  writeSafetensorsSync(onlyFloats, {
    f64: all.tensors.f64 as Required<SafetensorsTensorInput>,
    f16: all.tensors.f16 as Required<SafetensorsTensorInput>,
    f32: all.tensors.f32 as Required<SafetensorsTensorInput>,
  });
  const conv = readSafetensorsSync(onlyFloats, { dtype: 'float32' });
  for (const name of ['f64', 'f16', 'f32']) assert.is(hex(conv.tensors[name].data), info[name].f32hex, `${name} as float32`);
  // BF16 and F8 written through TensorSpec, and byte-identical output for the same input.
  const ref = readFileSync(same);
  const back = readSafetensorsSync(ref);
  assert.equal(Array.from(back.tensors.bf.data as Uint16Array), [0x3f80, 0xc000, 0x7f80, 0x0001]);
  assert.is(back.tensors.f8.dtype, 'F8_E4M3');
  const mine = encodeSafetensors(
    {
      bf: { dtype: 'BF16', shape: [4], data: new Uint16Array([0x3f80, 0xc000, 0x7f80, 0x0001]) },
      f8: { dtype: 'F8_E4M3', shape: [3], data: new Uint8Array([0x38, 0xb8, 0x7e]) },
      w: { shape: [2], data: new Float32Array([1, -2]) },
    },
    { metadata: { format: 'pt' } },
  );
  assert.is(mine.toString('hex'), ref.toString('hex'), 'encodeSafetensors writes the reference bytes');
});

(python ? Interop : Interop.skip)('Python rejects nothing Node writes and Node rejects what Python rejects', () => {
  // A few malformed images: the reference must refuse them too (so the rules are not stricter
  // than the format's, except where documented: header must start with '{').
  const script = `
import sys, safetensors
bad = 0
for path in sys.argv[1:]:
    try:
        safetensors.deserialize(open(path, "rb").read())
    except Exception:
        bad += 1
print(bad)
`;
  const paths = CORRUPT.filter((c) => c.name !== 'duplicate name').map((c, i) => {
    const p = join(dir, `py-corrupt-${i}.safetensors`);
    writeFileSync(p, c.bytes);
    return p;
  });
  assert.is(Number(py(script, ...paths).trim()), paths.length, 'the reference rejects every malformed image too');
});

Interop.run();
