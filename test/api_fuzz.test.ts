// Randomized argument test of the whole public JS API (test): every export (functions, class
// constructors, statics, methods and getters, the raw binding and its FlatIndex object) called with
// hostile and mostly-valid argument lists, sync and async, in a child process; each call must return
// or throw a typed VlkError, within 5 s, without crashing. VLK_FUZZ_SEED / _MS / _ONLY / _INFLIGHT
// (log the pool's in-flight count per call) steer a run.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { types } from 'node:util';
import * as lib from './helpers/lib';
import { expectCode } from './helpers/expect';
import { repoRoot } from './helpers/paths';
import { gaussianMatrix, rng } from './helpers/random';

// ---------------------------------------------------------------------------------------------
// What is fuzzed, and what is not.

/** Exports never called with random input, and why (the coverage test accepts exactly these). */
const NOT_FUZZED: Record<string, string> = {
  setIsa: 'process-wide: switches every later call to another kernel path',
  releaseMemory: 'process-wide: frees the caches every other call shares',
  'binding.setIsa': 'process-wide (the raw form of setIsa)',
  'binding.releaseMemory': 'process-wide (the raw form of releaseMemory)',
  errorCodes: 'a frozen array of strings, not callable',
  VlkError: 'the error class itself: its constructor converts the message as Error does (a Symbol throws a TypeError)',
  AbortError: 'the error class itself, as VlkError',
};

/** Targets whose first argument is a path they write: only ever called with paths under a temp dir. */
const WRITES_PATH = new Set([
  'writeNpy',
  'writeFvecs',
  'writeIvecs',
  'writeBvecs',
  'writeRawF32',
  'writeSafetensors',
  'writeSafetensorsSync',
  'FlatIndex#save',
  'FlatIndex#saveSync',
  'CombinerTrainer#save',
  'binding.writeSafetensorsSync',
  'binding.writeSafetensorsAsync',
  'binding.createFlatIndex#saveSync',
  'binding.createFlatIndex#saveAsync',
]);

const HANG_MS = 5_000;
const isChild = process.env.VLK_FUZZ_CHILD === '1';

interface Target {
  name: string;
  /** Makes the call; `inst` is a fresh instance for methods. */
  call: (args: unknown[]) => unknown;
  /** The raw binding: errors are native Errors carrying a library code, not VlkError instances. */
  raw: boolean;
  arity: number;
}

/** A user error planted by the test (throwing getter, Proxy trap, callback): it must pass through unchanged. */
class Planted extends Error {}

const isClass = (f: Function) => /^class[\s{]/.test(Function.prototype.toString.call(f));

/** Instances the method targets run on, one fresh per call (ShardedIndex: one kept, its workers are costly). */
const D = 4;
const f32 = (n: number, seed: number) => gaussianMatrix(1, n, seed);
let sharded: lib.ShardedIndex | null = null;
const INSTANCES: Record<string, () => unknown> = {
  FlatIndex: () => {
    const ix = new lib.FlatIndex({ dim: D });
    ix.add(f32(7 * D, 5), [0, 1, 2, 3, 4, 5, 6]);
    return ix;
  },
  MemoryBank: () => {
    const b = new lib.MemoryBank({ size: 8, dim: D });
    b.enqueue({ data: f32(3 * D, 6), rows: 3, cols: D });
    return b;
  },
  CombinerTrainer: () => new lib.CombinerTrainer({ dim: D, seed: 1 }),
  ShardedIndex: () => sharded,
  VlkError: () => new lib.VlkError('ERR_VLK_TYPE', 'x'),
  AbortError: () => new lib.AbortError(),
  'binding.createFlatIndex': () => {
    const ix = lib.binding.createFlatIndex(D, 'ip');
    ix.add(f32(7 * D, 5));
    return ix;
  },
  'binding.createCancelToken': () => lib.binding.createCancelToken(),
};

/** Every callable the library exports, as targets; `listed` are the exports deliberately left out. */
function enumerate(): { targets: Target[]; listed: string[]; uncovered: string[] } {
  const targets: Target[] = [];
  const listed: string[] = [];
  const uncovered: string[] = [];
  const seen = new Map<Function, string>();
  const raw = lib.binding as unknown as Record<string, Function>;
  const addMethods = (owner: string, proto: object, isRaw: boolean) => {
    for (const m of Object.getOwnPropertyNames(proto)) {
      if (m === 'constructor') continue;
      const d = Object.getOwnPropertyDescriptor(proto, m)!;
      const name = `${owner}#${m}`;
      const make = INSTANCES[owner];
      if (!make) {
        uncovered.push(`${name} (no instance factory)`);
        continue;
      }
      if (d.get) targets.push({ name, raw: isRaw, arity: 0, call: () => (make() as any)[m] });
      else if (typeof d.value === 'function') {
        targets.push({ name, raw: isRaw, arity: d.value.length, call: (a) => (make() as any)[m](...a) });
      }
    }
  };
  const addFunction = (name: string, f: Function, isRaw: boolean, self?: object) => {
    if (NOT_FUZZED[name]) {
      listed.push(name);
      return;
    }
    if (seen.has(f)) return; // the same function under another name (graph.relevance = relevance)
    seen.set(f, name);
    if (isClass(f)) {
      targets.push({ name: `new ${name}`, raw: false, arity: f.length, call: (a) => new (f as any)(...a) });
      for (const s of Object.getOwnPropertyNames(f)) {
        if (['length', 'name', 'prototype'].includes(s)) continue;
        const v = (f as any)[s];
        if (typeof v === 'function') targets.push({ name: `${name}.${s}`, raw: false, arity: v.length, call: (a) => v.apply(f, a) });
      }
      addMethods(name, f.prototype, false);
      return;
    }
    targets.push({ name, raw: isRaw, arity: f.length, call: (a) => f.apply(self, a) });
  };
  for (const [name, v] of Object.entries(lib)) {
    if (typeof v === 'function') addFunction(name, v, false);
    else if (NOT_FUZZED[name]) listed.push(name);
    else if (v !== null && typeof v === 'object') {
      const fns = Object.keys(v).filter((k) => typeof (v as any)[k] === 'function');
      if (fns.length === 0) uncovered.push(`${name} (an object with no functions)`);
      for (const k of fns) addFunction(`${name}.${k}`, (v as any)[k], v === raw, v);
    } else uncovered.push(`${name} (${typeof v})`);
  }
  // Objects the raw binding hands out: their methods parse arguments natively too.
  addMethods('binding.createFlatIndex', Object.getPrototypeOf(lib.binding.createFlatIndex(D, 'ip')), true);
  addMethods('binding.createCancelToken', Object.getPrototypeOf(lib.binding.createCancelToken()), true);
  return { targets, listed, uncovered };
}

// ---------------------------------------------------------------------------------------------
// Hostile values. Each generator returns the value and a short description (the description is
// made when the value is, so printing never runs a planted getter).

interface Gen {
  v: unknown;
  d: string;
}
type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];

const NUMBERS = [undefined, null, NaN, Infinity, -Infinity, -0, -1, 0, 1, 2, 3, 4, 7, 1.5, -1.5, 0.5, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 1e300, -1e300, Number.MIN_VALUE];
const BIGINTS = [0n, 1n, -1n, 7n, 2n ** 53n, 2n ** 63n - 1n, 2n ** 64n, -(2n ** 70n)];
const STRINGS = ['', 'abc', 'cosine', 'ip', 'l2', 'cpu', 'cuda', 'auto', 'sum', 'mean', 'rrf', 'float32', '1', 'NaN', 'x'.repeat(5000), '\u0000', 'é\ud800'];
const KEYS = ['data', 'rows', 'cols', 'dims', 'dim', 'k', 'metric', 'signal', 'threads', 'ids', 'offset', 'lengths', 'clamp', 'device', 'precision', 'seed', 'iterations', 'weights', 'mode'];
const TYPED = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array] as const;
const LENGTHS = [0, 1, 2, 3, 4, 7, 12, 28, 513];

const num = (x: unknown) => (typeof x === 'number' && Object.is(x, -0) ? '-0' : String(x));

function typedArray(r: Rand, kind = pick(r, TYPED), n = pick(r, LENGTHS), nan = r() < 0.3): Gen {
  const a: any = new kind(n);
  for (let i = 0; i < n; i++) {
    if (kind === BigInt64Array || kind === BigUint64Array) a[i] = BigInt(Math.floor(r() * 9));
    else if (kind === Float32Array || kind === Float64Array) a[i] = nan && r() < 0.2 ? pick(r, [NaN, Infinity, -Infinity]) : r() * 4 - 2;
    else a[i] = Math.floor(r() * 9) - (r() < 0.1 ? 3 : 0);
  }
  return { v: a, d: `${kind.name}(${n}${nan ? ', nan?' : ''})` };
}

/** Detaches `buf` (false for buffers that cannot be: shared, or Node's untransferable pool). */
function detach(buf: ArrayBuffer): boolean {
  try {
    structuredClone(buf, { transfer: [buf] });
    return true;
  } catch {
    return false;
  }
}

/** A { data, rows, cols } / { data, dims } object with junk in one or more fields. */
function junkMatrix(r: Rand, depth: number): Gen {
  const rows = r() < 0.5 ? pick(r, NUMBERS) : Math.floor(r() * 5);
  const cols = r() < 0.5 ? pick(r, NUMBERS) : Math.floor(r() * 5);
  const data = r() < 0.6 ? typedArray(r, Float32Array, Math.floor(r() * 20)) : hostile(r, depth + 1);
  if (r() < 0.3) {
    const junk = r() < 0.3 ? hostile(r, depth + 1) : null;
    const dims = junk ? junk.v : [rows, cols, ...(r() < 0.3 ? [pick(r, NUMBERS)] : [])];
    return { v: { data: data.v, dims }, d: `{ data: ${data.d}, dims: ${junk ? junk.d : `[${(dims as unknown[]).map(num)}]`} }` };
  }
  const extra = r() < 0.3 ? pick(r, KEYS) : null;
  const ev = extra ? hostile(r, depth + 1) : null;
  const o: any = { data: data.v, rows, cols };
  if (extra) o[extra] = ev!.v;
  return { v: o, d: `{ data: ${data.d}, rows: ${num(rows)}, cols: ${num(cols)}${extra ? `, ${extra}: ${ev!.d}` : ''} }` };
}

const PRODUCERS: ((r: Rand, depth: number) => Gen)[] = [
  (r) => {
    const v = pick(r, NUMBERS);
    return { v, d: num(v) };
  },
  (r) => {
    const v = pick(r, BIGINTS);
    return { v, d: `${v}n` };
  },
  (r) => {
    const v = pick(r, STRINGS);
    return { v, d: JSON.stringify(v.length > 20 ? `${v.slice(0, 8)}...(${v.length})` : v) };
  },
  (r) => pick(r, [{ v: true, d: 'true' }, { v: false, d: 'false' }, { v: Symbol('s'), d: 'Symbol(s)' }, { v: Symbol.iterator, d: 'Symbol.iterator' }]),
  (r) =>
    pick(r, [
      { v: () => undefined, d: '() => undefined' },
      {
        v: () => {
          throw new Planted('planted callback');
        },
        d: '() => throw Planted',
      },
      { v: class {}, d: 'class {}' },
      { v: Math.max, d: 'Math.max' },
    ]),
  (r, depth) => {
    const n = Math.floor(r() * 5);
    const items = Array.from({ length: n }, () => hostile(r, depth + 1));
    return { v: items.map((g) => g.v), d: `[${items.map((g) => g.d).join(', ')}]` };
  },
  (r) => {
    const n = pick(r, [1, 5, 513]);
    const a = new Array(n);
    if (r() < 0.5) a[n - 1] = 1;
    return { v: a, d: `sparse Array(${n})` };
  },
  (r) => {
    const n = pick(r, [3, 7, 12, 513]);
    return { v: Array.from({ length: n }, () => Math.floor(r() * 7)), d: `[${n} small ints]` };
  },
  (r) => typedArray(r),
  (r) => typedArray(r),
  (r) => {
    const g = typedArray(r, pick(r, [Float32Array, Int32Array, Float64Array, Uint8Array]), pick(r, [4, 12, 28]));
    const t = g.v as Float32Array;
    if (r() < 0.5) return { v: t.subarray(1), d: `${g.d}.subarray(1)` };
    detach(t.buffer as ArrayBuffer);
    return { v: t, d: `detached ${g.d}` };
  },
  (r) => {
    const kind = pick(r, [Float32Array, Int32Array, Float64Array]);
    const n = pick(r, [1, 4, 12, 28]);
    const t = new kind(new SharedArrayBuffer(n * kind.BYTES_PER_ELEMENT) as unknown as ArrayBuffer);
    for (let i = 0; i < n; i++) t[i] = r();
    return { v: t, d: `SharedArrayBuffer ${kind.name}(${n})` };
  },
  (r) =>
    pick(r, [
      { v: new ArrayBuffer(16), d: 'ArrayBuffer(16)' },
      { v: new SharedArrayBuffer(16), d: 'SharedArrayBuffer(16)' },
      { v: new DataView(new ArrayBuffer(16)), d: 'DataView(16)' },
      { v: Buffer.alloc(48), d: 'Buffer(48)' },
      { v: Buffer.from('hello'), d: "Buffer('hello')" },
      (() => {
        const b = new ArrayBuffer(16);
        detach(b);
        return { v: b, d: 'detached ArrayBuffer' };
      })(),
    ]),
  (r, depth) => junkMatrix(r, depth),
  (r, depth) => junkMatrix(r, depth),
  (r) => {
    const key = pick(r, KEYS);
    const o: any = { data: f32(12, 3), rows: 3, cols: 4 };
    Object.defineProperty(o, key, {
      enumerable: true,
      get() {
        throw new Planted(`planted getter ${key}`);
      },
    });
    return { v: o, d: `{ data, rows: 3, cols: 4, get ${key}() { throw Planted } }` };
  },
  (r) => {
    const trap = pick(r, ['get', 'has', 'ownKeys', 'getOwnPropertyDescriptor', 'getPrototypeOf']);
    const base: any = r() < 0.5 ? { data: f32(12, 3), rows: 3, cols: 4 } : [1, 2, 3];
    const p = new Proxy(base, {
      [trap]() {
        throw new Planted(`planted proxy ${trap}`);
      },
    });
    return { v: p, d: `Proxy(${Array.isArray(base) ? 'array' : 'matrix'}, ${trap} throws Planted)` };
  },
  (r) => {
    // Answers differently on every read: a check and a later use must not see different shapes.
    let reads = 0;
    const p = new Proxy({ data: f32(12, 3), rows: 3, cols: 4, dim: 4, k: 2 } as any, {
      get(t, key) {
        reads++;
        // -1 after the first reads: a value checked once and read again unchecked reaches the native side.
        if (key === 'rows' || key === 'cols' || key === 'dim' || key === 'k') return reads > 2 ? -1 : t[key];
        if (key === 'data' && reads > 2) return new Float32Array(1);
        return t[key];
      },
    });
    return { v: p, d: 'Proxy(matrix whose rows/cols/dim/k turn -1, data empty, after two reads)' };
  },
  (r) => {
    const t = new Float32Array(12);
    return { v: new Proxy(t, {}), d: 'Proxy(Float32Array(12))' };
  },
  (r) => {
    const o = Object.freeze({ data: Object.freeze(f32(0, 1)), rows: 3, cols: 4 });
    return pick(r, [
      { v: o, d: 'frozen { data: Float32Array(0), rows: 3, cols: 4 }' },
      { v: Object.freeze({}), d: 'frozen {}' },
      { v: Object.freeze([1, 2]), d: 'frozen [1, 2]' },
    ]);
  },
  (r, depth) => {
    const n = Math.floor(r() * 4);
    const o: any = r() < 0.2 ? Object.create(null) : {};
    const parts: string[] = [];
    for (let i = 0; i < n; i++) {
      const key = pick(r, KEYS);
      const g = hostile(r, depth + 1);
      o[key] = g.v;
      parts.push(`${key}: ${g.d}`);
    }
    return { v: o, d: `{ ${parts.join(', ')} }` };
  },
  (r) =>
    pick(r, [
      { v: AbortSignal.abort(), d: 'an aborted AbortSignal' },
      { v: new AbortController().signal, d: 'an AbortSignal' },
      { v: new Date(0), d: 'Date' },
      { v: /x/, d: '/x/' },
      { v: new Map([[1, 2]]), d: 'Map' },
      { v: new Set([1]), d: 'Set' },
      { v: Promise.resolve(1), d: 'Promise' },
      { v: new Error('e'), d: 'Error' },
      { v: new URL('http://example.invalid/x'), d: 'URL(http)' },
    ]),
];

function hostile(r: Rand, depth = 0): Gen {
  // Deep levels draw only leaves, so the values stay small.
  if (depth >= 2) return PRODUCERS[Math.floor(r() * 5)](r, depth);
  return pick(r, PRODUCERS)(r, depth);
}

// ---------------------------------------------------------------------------------------------
// Valid calls (templates) and their mutation.

let dir = '';
const files: Record<string, string> = {};

const mat = (rows: number, cols: number, seed: number) => ({ data: f32(rows * cols, seed), rows, cols });

/** Valid argument lists by target name (the sync and async forms share one). */
const TEMPLATES: Record<string, (s: number) => unknown[]> = {
  search: (s) => [f32(3 * D, s), f32(7 * D, s + 1), { k: 2, dim: D }],
  tokenMaxSearch: (s) => [f32(3 * D, s), { data: f32(5 * 3 * D, s + 1), dims: [5, 3, D] }, { k: 2, dim: D }],
  compose: (s) => [f32(3 * D, s), f32(3 * D, s + 1), { mode: 'sum', dim: D }],
  composedSearch: (s) => [INSTANCES.FlatIndex(), f32(3 * D, s), f32(3 * D, s + 1), { k: 2, mode: 'sum' }],
  twoHopLoss: (s) => [{ query: { data: f32(2 * D, s), dims: [2, D] }, targetTokens: { data: f32(2 * 3 * D, s + 1), dims: [2, 3, D] } }, { temperature: 0.1 }],
  emaUpdate: (s) => [f32(D, s), f32(D, s + 1), 0.9],
  memoryInfoNce: (s) => [mat(2, D, s), mat(2, D, s + 1), mat(5, D, s + 2), { temperature: 0.07 }],
  vseHinge: (s) => [mat(3, 3, s), { margin: 0.2 }],
  weightedTriplet: (s) => [mat(3, 3, s), { seed: 1 }],
  preferenceLoss: (s) => [{ policyChosen: f32(3, s), policyRejected: f32(3, s + 1), referenceChosen: f32(3, s + 2), referenceRejected: f32(3, s + 3) }, { beta: 1 }],
  clipLoss: (s) => [f32(3 * D, s), f32(3 * D, s + 1), { logitScale: 2, dim: D }],
  kmeans: (s) => [mat(20, D, s), 3, { iterations: 3, seed: 1 }],
  sinkhorn: (s) => [mat(4, 3, s)],
  swavLoss: (s) => [mat(4, 3, s), mat(4, 3, s + 1), mat(4, 3, s + 2), mat(4, 3, s + 3), {}],
  relevance: (s) => [f32(5 * D, s), { dim: D }],
  relevanceBackward: (s) => [f32(5 * D, s), f32(25, s + 1), { dim: D }],
  scanRelevance: (s) => [{ words: { data: f32(2 * 3 * D, s), dims: [2, 3, D] }, wordLengths: Int32Array.from([3, 2]), regions: { data: f32(5 * 2 * D, s + 1), dims: [5, 2, D] } }],
  rowTopkMask: (s) => [f32(16, s), { dim: 4, fraction: 0.5 }],
  gcn: (s) => [{ adjacency: f32(16, s), input: mat(4, 4, s + 1), weight: mat(4, 5, s + 2), bias: f32(5, s + 3) }],
  gcnBackward: (s) => [{ adjacency: f32(16, s), input: mat(4, 4, s + 1), weight: mat(4, 5, s + 2), bias: f32(5, s + 3), gradOutput: f32(20, s + 4) }],
  maxkPool: (s) => [{ data: f32(2 * 5 * 3, s), dims: [2, 5, 3] }, { k: 2 }],
  maxkPoolBackward: (s) => [{ data: f32(2 * 5 * 3, s), dims: [2, 5, 3] }, f32(2 * 3, s + 1), { k: 2 }],
  cosineMhaPool: (s) => [mhaInputs(s), {}],
  cosineMhaPoolBackward: (s) => [mhaInputs(s), mat(2, D, s + 9)],
  gatedFusion: (s) => [{ e: mat(2, D, s), g: mat(2, D, s + 1), weight: mat(D, 2 * D, s + 2), bias: f32(D, s + 3) }],
  gatedFusionBackward: (s) => [{ e: mat(2, D, s), g: mat(2, D, s + 1), weight: mat(D, 2 * D, s + 2), bias: f32(D, s + 3) }, mat(2, D, s + 4)],
  scanSimilarity: (s) => [{ words: { data: f32(2 * 3 * D, s), dims: [2, 3, D] }, regions: { data: f32(2 * 3 * 2 * D, s + 1), dims: [2, 3, 2, D] } }, { k: 2 }],
  expandQueries: (s) => [f32(3 * D, s), f32(7 * D, s + 1), { dim: D, m: 2, k: 2 }],
  augmentGallery: (s) => [f32(7 * D, s), { dim: D, m: 2 }],
  biasedAttention: (s) => [attnInputs(s), { heads: 2, biasWeight: 1 }],
  biasedAttentionBackward: (s) => {
    const inputs = attnInputs(s);
    const { saved } = lib.biasedAttentionSync(inputs as any, { heads: 2, biasWeight: 1 });
    return [inputs, mat(3, D, s + 9), { heads: 2, biasWeight: 1, saved }];
  },
  mergeTopK: (s) => {
    const a = lib.searchSync(f32(2 * D, s), f32(5 * D, s + 1), { k: 2, dim: D });
    const b = lib.searchSync(f32(2 * D, s), f32(5 * D, s + 2), { k: 2, dim: D });
    return [[a, { ...b, offset: 5 }], { k: 2 }];
  },
  crossModalRanks: (s) => [f32(2 * D, s), f32(10 * D, s + 1), { perImage: 5, dim: D }],
  rankOfTargets: (s) => [f32(3 * D, s), f32(7 * D, s + 1), Int32Array.from([0, 4, 6]), { dim: D }],
  rerank: (s) => [f32(3 * D, s), f32(7 * D, s + 1), Int32Array.from([0, 3, 6, 1, -1, -1, 5, 5, 2]), { k: 2, dim: D }],
  multiQuerySearch: (s) => [f32(6 * D, s), f32(7 * D, s + 1), { rewrites: 3, k: 2, fusion: 'mean', dim: D }],
  combinePriors: (s) => [[f32(7, s), f32(7, s + 1)]],
  priorSearch: (s) => [f32(3 * D, s), f32(7 * D, s + 1), { k: 2, prior: f32(7, s + 2), priorWeight: 0.1, dim: D }],
  aestheticRerank: (s) => [f32(10, s), [f32(10, s + 1), f32(10, s + 2)], { lambda: 0.1 }],
  gridOrder: (s) => [f32(40, s), f32(40, s + 1), { u: 5, v: 4, stride: 2 }],
  encodeSafetensors: (s) => [{ x: { shape: [2, 2], data: f32(4, s) } }, { metadata: { a: 'b' } }],
  writeSafetensors: (s) => ['', { x: { shape: [2, 2], data: f32(4, s) } }, { metadata: { a: 'b' } }],
  readSafetensors: () => [files.safetensors],
  'FlatIndex.load': () => [files.index],
  'FlatIndex.fromBuffer': () => [readFileSync(files.index)],
  'new FlatIndex': () => [{ dim: D, metric: 'cosine' }],
  'FlatIndex#add': (s) => [f32(2 * D, s), [10, 11]],
  'FlatIndex#remove': () => [[1, 2]],
  'FlatIndex#has': () => [3],
  'FlatIndex#get': () => [3],
  'FlatIndex#search': (s) => [f32(3 * D, s), { k: 2 }],
  'FlatIndex#save': () => [''],
  'new ShardedIndex': () => [{ dim: D, shards: 2 }],
  'ShardedIndex#add': (s) => [f32(2 * D, s)],
  'ShardedIndex#has': () => [1],
  'ShardedIndex#search': (s) => [f32(3 * D, s), { k: 2 }],
  'new MemoryBank': () => [{ size: 8, dim: D }],
  'MemoryBank#enqueue': (s) => [mat(2, D, s)],
  'new CombinerTrainer': () => [{ dim: D, seed: 1 }],
  'CombinerTrainer#fit': (s) => [{ image: mat(3, D, s), text: mat(3, D, s + 1), target: mat(3, D, s + 2) }, { epochs: 1 }],
  'CombinerTrainer#compose': (s) => [mat(2, D, s), mat(2, D, s + 1)],
  'CombinerTrainer#save': () => [''],
  'new VlkError': () => ['ERR_VLK_TYPE', 'message'],
  readNpy: () => [files.npy],
  readNpyAny: () => [files.npy],
  readVectors: () => [files.npy],
  openVectors: () => [files.npy],
  readFvecs: () => [files.fvecs],
  readRawF32: () => [files.raw, { cols: D }],
  writeNpy: (s) => ['', mat(3, D, s)],
  writeFvecs: (s) => ['', mat(3, D, s)],
  writeRawF32: (s) => ['', mat(3, D, s)],
  writeIvecs: () => ['', { data: Int32Array.from({ length: 12 }, (_, i) => i), rows: 3, cols: D }],
  writeBvecs: () => ['', { data: Uint8Array.from({ length: 12 }, (_, i) => i), rows: 3, cols: D }],
  recallAtK: () => [Int32Array.from([0, 3, 1, 9]), [1, 5]],
  medr: () => [Int32Array.from([0, 3, 1, 9])],
  meanr: () => [Int32Array.from([0, 3, 1, 9])],
};

function mhaInputs(s: number) {
  return {
    global: mat(2, D, s),
    tokens: { data: f32(2 * 3 * D, s + 1), dims: [2, 3, D] },
    wq: { data: f32(D * D, s + 2), dims: [1, D, D] },
    wk: { data: f32(D * D, s + 3), dims: [1, D, D] },
    wv: { data: f32(D * D, s + 4), dims: [1, D, D] },
  };
}

function attnInputs(s: number) {
  return {
    x: mat(3, D, s),
    wq: mat(D, D, s + 1),
    wk: mat(D, D, s + 2),
    wv: mat(D, D, s + 3),
    wo: mat(D, D, s + 4),
    bq: f32(D, s + 5),
    bk: f32(D, s + 6),
    bv: f32(D, s + 7),
    bo: f32(D, s + 8),
    gamma: f32(D, s + 9),
    beta: f32(D, s + 10),
    relevance: mat(3, 3, s + 11),
    mask: new Uint8Array(9).fill(1),
  };
}

/** The template of a target: its own, its sync/async twin's, or one recorded from the raw binding. */
const recorded = new Map<string, unknown[][]>();
function templateOf(name: string): ((s: number) => unknown[]) | undefined {
  const base = name.replace(/^new /, 'new ').replace(/Sync$/, '').replace(/^metrics\./, '').replace(/^graph\./, '');
  if (TEMPLATES[base]) return TEMPLATES[base];
  if (TEMPLATES[name]) return TEMPLATES[name];
  const rec = recorded.get(name);
  if (rec && rec.length) return (s) => clone(rec[s % rec.length]);
  return undefined;
}

/** Deep copy of plain objects, arrays and typed arrays; anything else (handles, natives, signals) shared. */
function clone(v: unknown): any {
  if (ArrayBuffer.isView(v)) return v instanceof DataView ? v : (v as any).slice();
  if (Array.isArray(v)) return v.map(clone);
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const o: any = {};
    for (const [k, x] of Object.entries(v)) o[k] = clone(x);
    return o;
  }
  return v;
}

/** Slots of an argument tree a mutation may replace: [parent, key, path]. */
function slots(args: unknown[]): [any, string | number, string][] {
  const out: [any, string | number, string][] = [];
  const walk = (parent: any, key: string | number, path: string, depth: number): void => {
    // Planted getters and Proxies stay unread: only the call under test may trigger them.
    const desc = Object.getOwnPropertyDescriptor(parent, key);
    if (!desc || desc.get) return;
    if (desc.writable && desc.configurable && Object.isExtensible(parent)) out.push([parent, key, path]);
    const v = desc.value;
    if (depth > 3 || v === null || typeof v !== 'object' || ArrayBuffer.isView(v) || types.isProxy(v)) return;
    if (Array.isArray(v)) v.forEach((_, i) => walk(v, i, `${path}[${i}]`, depth + 1));
    else if (Object.getPrototypeOf(v) === Object.prototype) for (const k of Object.keys(v)) walk(v, k, `${path}.${k}`, depth + 1);
  };
  args.forEach((_, i) => walk(args, i, `args[${i}]`, 0));
  return out;
}

/** One or two mutations of a valid argument list; returns their description. */
function mutate(r: Rand, args: unknown[]): string {
  const done: string[] = [];
  const count = r() < 0.7 ? 1 : 2;
  for (let m = 0; m < count; m++) {
    try {
      mutateOnce(r, args, done);
    } catch {
      // The slot could not take this mutation (a detached or frozen value): append junk instead.
      const g = hostile(r, 1);
      args.push(g.v);
      done.push(`extra argument ${g.d}`);
    }
  }
  return done.join('; ');
}

function mutateOnce(r: Rand, args: unknown[], done: string[]): void {
  {
    const all = slots(args);
    if (all.length === 0) {
      const g = hostile(r, 1);
      args.push(g.v);
      done.push(`argument ${g.d}`);
      return;
    }
    const [parent, key, path] = pick(r, all);
    const cur = parent[key];
    const op = r();
    if (r() < 0.1) {
      // Sizes whose product wraps 64 bits to 0, with empty data: a length check against such a
      // product passes unless the product is checked.
      const objs = all.map(([p, k]) => p[k]).filter((v) => v !== null && typeof v === 'object' && !types.isProxy(v) && Object.getPrototypeOf(v) === Object.prototype && Object.isExtensible(v) && Object.getOwnPropertyNames(v).some((k) => ArrayBuffer.isView(Object.getOwnPropertyDescriptor(v, k)!.value)));
      if (objs.length > 0) {
        const o = pick(r, objs);
        for (const k of Object.keys(o)) {
          if (Object.getOwnPropertyDescriptor(o, k)!.get) continue;
          if (typeof o[k] === 'number' && Number.isInteger(o[k]) && o[k] >= 1) o[k] = 2 ** 32;
          else if (ArrayBuffer.isView(o[k]) && !(o[k] instanceof DataView)) o[k] = new (o[k] as any).constructor(0);
          else if (Array.isArray(o[k]) && !types.isProxy(o[k]) && o[k].every((x: unknown) => typeof x === 'number')) o[k] = o[k].map(() => 2 ** 32);
        }
        done.push('sizes of one object set to 2^32 (products wrap to 0), its arrays emptied');
        return;
      }
    }
    if (ArrayBuffer.isView(cur) && !(cur instanceof DataView) && op < 0.5) {
      const t = cur as any;
      const which = Math.floor(r() * 5);
      if (which === 0 && t.length > 0 && !(t instanceof BigInt64Array || t instanceof BigUint64Array)) {
        const i = Math.floor(r() * t.length);
        const v = pick(r, [NaN, Infinity, -Infinity, -1, 2 ** 31, 1e30, -0]);
        t[i] = v;
        done.push(`${path}[${i}] = ${num(v)}`);
      } else if (which === 1) {
        parent[key] = t.subarray(Math.min(1, t.length));
        done.push(`${path} = ${path}.subarray(1)`);
      } else if (which === 2) {
        const kind = pick(r, TYPED);
        const g = typedArray(r, kind, t.length, false);
        parent[key] = g.v;
        done.push(`${path} = ${g.d}`);
      } else if (which === 3) {
        const copy = new t.constructor(new SharedArrayBuffer(t.byteLength));
        if (t.length > 0) copy.set(t);
        parent[key] = copy;
        done.push(`${path} = shared copy`);
      } else {
        done.push(detach(t.buffer) ? `${path} detached` : `${path} left as is (cannot be detached)`);
      }
    } else if (typeof cur === 'number' && op < 0.6) {
      const v = pick(r, [cur + 1, cur - 1, -cur, cur + 0.5, cur * 2 ** 31, 0, NaN, 2 ** 53, 1e300, -1]);
      parent[key] = v;
      done.push(`${path} = ${num(v)}`);
    } else if (op < 0.75 && typeof key === 'string') {
      delete parent[key];
      done.push(`delete ${path}`);
    } else if (op < 0.85 && cur !== null && typeof cur === 'object' && !types.isProxy(cur) && Object.isExtensible(cur) && !ArrayBuffer.isView(cur) && !Array.isArray(cur) && Object.getPrototypeOf(cur) === Object.prototype) {
      const k = pick(r, KEYS);
      const g = hostile(r, 1);
      cur[k] = g.v;
      done.push(`${path}.${k} = ${g.d}`);
    } else if (op < 0.9 && parent === args) {
      if (r() < 0.5) {
        args.length = Math.max(0, args.length - 1);
        done.push('last argument dropped');
      } else {
        const g = hostile(r, 1);
        args.push(g.v);
        done.push(`extra argument ${g.d}`);
      }
    } else {
      const g = hostile(r, 1);
      parent[key] = g.v;
      done.push(`${path} = ${g.d}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The oracle.

const KNOWN_CODES = new Set<string>(lib.errorCodes);

/** Why `err` is not an acceptable outcome, or null when it is. */
function badError(err: unknown, rawTarget: boolean): string | null {
  if (err instanceof Planted) return null;
  const e = err as any;
  const typed = err instanceof lib.VlkError || (rawTarget && err instanceof Error);
  if (typed && typeof e.code === 'string' && KNOWN_CODES.has(e.code) && typeof e.message === 'string' && e.message.length > 0) return null;
  if (err instanceof Error) return `${err.constructor.name}${e.code !== undefined ? ` (code ${String(e.code)})` : ''}: ${err.message}`;
  return `a thrown non-Error: ${typeof err === 'symbol' ? 'symbol' : String(err)}`;
}

/** Closes what a call created (indexes, banks, worker-backed indexes) so the run stays small. */
async function dispose(v: unknown): Promise<void> {
  if (v === null || typeof v !== 'object' || v === sharded) return;
  const close = (v as any).close;
  if (typeof close !== 'function' || v instanceof lib.VlkError) return;
  try {
    await close.call(v);
  } catch {
    // A second close, or one on an object that is not an index: not what this test checks.
  }
}

// ---------------------------------------------------------------------------------------------
// The child: the fuzz loop.

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

async function child(): Promise<void> {
  const seed = Number(process.env.VLK_FUZZ_SEED);
  const budgetMs = Number(process.env.VLK_FUZZ_MS || 20_000);
  const only = process.env.VLK_FUZZ_ONLY;
  const logFd = openSync(process.env.VLK_FUZZ_LOG!, 'a');
  dir = process.env.VLK_FUZZ_DIR!;
  const out = (tag: string, obj: unknown) => process.stdout.write(`${tag} ${JSON.stringify(obj)}\n`);
  let writeCounter = 0;
  const tmpPath = (ext: string) => join(dir, `w${writeCounter++ % 8}${ext}`);

  // Inputs of the reader templates.
  files.npy = join(dir, 'm.npy');
  lib.writeNpy(files.npy, mat(3, D, 1));
  files.fvecs = join(dir, 'm.fvecs');
  lib.writeFvecs(files.fvecs, mat(3, D, 2));
  files.raw = join(dir, 'm.f32');
  lib.writeRawF32(files.raw, mat(3, D, 3));
  files.safetensors = join(dir, 'm.safetensors');
  lib.writeSafetensorsSync(files.safetensors, { x: { shape: [2, 2], data: f32(4, 4) } });
  files.index = join(dir, 'm.idx');
  const ix = INSTANCES.FlatIndex() as lib.FlatIndex;
  ix.saveSync(files.index);
  ix.close();
  sharded = new lib.ShardedIndex({ dim: D, shards: 2 });
  await sharded.add(f32(7 * D, 5));

  const { targets } = enumerate();
  const selected = targets.filter((t) => !only || t.name.includes(only));

  // The raw binding's valid arguments: what lib passes it during the valid template calls.
  const loader = require('../dist/cjs/loader.js');
  const rawBinding = loader.binding;
  let recording = true;
  const record = (name: string, args: unknown[]) => {
    if (!recording) return;
    const list = recorded.get(name) ?? [];
    if (list.length < 4) list.push(clone(args));
    recorded.set(name, list);
  };
  const wrapNative = (ixn: any) =>
    new Proxy(ixn, {
      get(t, key) {
        const v = t[key];
        if (typeof v !== 'function' || typeof key !== 'string') return v;
        return (...a: unknown[]) => {
          record(`binding.createFlatIndex#${key}`, a);
          return v.apply(t, a);
        };
      },
    });
  // The target is an empty object: the binding's own properties are read-only, and a Proxy must
  // return those unchanged when they are its target's.
  loader.binding = new Proxy({}, {
    get(_, key) {
      const t = rawBinding;
      const v = t[key];
      if (typeof v !== 'function' || typeof key !== 'string') return v;
      return (...a: unknown[]) => {
        record(`binding.${key}`, a);
        const res = v.apply(t, a);
        if (['createFlatIndex', 'loadFlatIndexSync', 'flatIndexFromBufferSync'].includes(key)) return wrapNative(res);
        if (res && typeof res.then === 'function' && /^(loadFlatIndex|flatIndexFromBuffer)Async$/.test(key)) return res.then(wrapNative);
        return res;
      };
    },
  });

  const fixArgs = (t: Target, args: unknown[]) => {
    if (!WRITES_PATH.has(t.name)) return;
    const p = args[0];
    if (typeof p === "string" || (!types.isProxy(p) && p instanceof URL) || p === undefined) args[0] = tmpPath(t.name.includes('afetensors') ? '.safetensors' : '.bin');
  };

  let calls = 0;
  let failures = 0;
  const covered = new Set<string>();
  const started = Date.now();

  const attempt = async (t: Target, args: unknown[], desc: string, round: number): Promise<string | null> => {
    fixArgs(t, args);
    writeSync(logFd, `${t.name}\tround ${round}\t${desc}${process.env.VLK_FUZZ_INFLIGHT ? `\tinFlight ${lib.binding.info().inFlight}` : ''}\n`);
    calls++;
    covered.add(t.name);
    const t0 = Date.now();
    let result: unknown;
    try {
      result = t.call(args);
    } catch (err) {
      return badError(err, t.raw);
    }
    if (Date.now() - t0 > HANG_MS) return `the call took ${Date.now() - t0} ms`;
    if (result !== null && typeof result === 'object' && typeof (result as any).then === 'function') {
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        (result as Promise<unknown>).then(
          (v) => ({ ok: true as const, v }),
          (err) => ({ ok: false as const, err }),
        ),
        new Promise<{ hang: true }>((res) => {
          timer = setTimeout(() => res({ hang: true }), HANG_MS);
        }),
      ]);
      clearTimeout(timer);
      if ('hang' in outcome) return `the promise did not settle within ${HANG_MS} ms`;
      if (!outcome.ok) return badError(outcome.err, t.raw);
      await dispose(outcome.v);
      return null;
    }
    await dispose(result);
    return null;
  };

  // Phase 1: each template once, unchanged (it must succeed; this also records the binding's inputs).
  for (const t of selected) {
    const tpl = templateOf(t.name);
    if (!tpl || t.raw) continue;
    let args: unknown[];
    try {
      args = tpl(1);
    } catch (err) {
      out('TEMPLATE', { target: t.name, error: `building the template: ${(err as Error).message}` });
      continue;
    }
    const why = await attempt(t, args, 'valid template', 0);
    const err = why ?? (await validFails(t, tpl));
    if (err) out('TEMPLATE', { target: t.name, error: err });
  }
  async function validFails(t: Target, tpl: (s: number) => unknown[]): Promise<string | null> {
    // attempt() accepts a VlkError; a template must not even throw that.
    try {
      const args = tpl(2);
      fixArgs(t, args);
      const v = t.call(args);
      await dispose(await v);
      return null;
    } catch (err) {
      return `valid call failed: ${(err as Error).message}`;
    }
  }

  // Phase 2: rounds over every target until the time budget is spent (only valid calls are
  // recorded as the binding's templates).
  recording = false;
  let round = 1;
  while (Date.now() - started < budgetMs && failures < 40) {
    for (const t of selected) {
      const r = rng(hash(`${seed}:${t.name}:${round}`));
      const tpl = templateOf(t.name);
      let args: unknown[];
      let desc: string;
      if (tpl && r() < 0.6) {
        try {
          args = tpl(round);
        } catch {
          continue;
        }
        desc = `valid call with ${mutate(r, args)}`;
      } else {
        const n = Math.floor(r() * (t.arity + 3));
        const gens = Array.from({ length: n }, () => hostile(r));
        args = gens.map((g) => g.v);
        desc = `(${gens.map((g) => g.d).join(', ')})`;
      }
      const why = await attempt(t, args, desc, round);
      if (why) {
        failures++;
        out('FAIL', { target: t.name, round, seed, args: desc, error: why });
      }
      if (t.name.startsWith('ShardedIndex#') && isClosed(sharded)) {
        sharded = new lib.ShardedIndex({ dim: D, shards: 2 });
        await sharded.add(f32(7 * D, 5));
      }
    }
    round++;
  }
  out('COVERED', [...covered]);
  out('DONE', { calls, rounds: round - 1, ms: Date.now() - started });
  closeSync(logFd);
  process.exit(0);
}

function isClosed(ix: lib.ShardedIndex | null): boolean {
  try {
    void ix!.size;
    return false;
  } catch {
    return true;
  }
}

// ---------------------------------------------------------------------------------------------
// The parent: uvu suites.

interface RunResult {
  seed: number;
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  lastCall: string;
  hung: boolean;
  fails: any[];
  templates: any[];
  covered: string[];
  done: any;
}

function runChild(seed: number): Promise<RunResult> {
  dir = mkdtempSync(join(tmpdir(), 'vlk-api-fuzz-'));
  const log = join(dir, 'calls.log');
  writeFileSync(log, '');
  const self = relative(repoRoot, __filename);
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', self], {
      cwd: repoRoot,
      env: { ...process.env, VLK_FUZZ_CHILD: '1', VLK_FUZZ_SEED: String(seed), VLK_FUZZ_LOG: log, VLK_FUZZ_DIR: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let hung = false;
    proc.stdout.on('data', (d) => (stdout += d));
    proc.stderr.on('data', (d) => (stderr += d));
    // A sync call that never returns stops the log from growing: kill the child and report it.
    let size = -1;
    let since = Date.now();
    const watch = setInterval(() => {
      const s = statSync(log).size;
      if (s !== size) {
        size = s;
        since = Date.now();
      } else if (Date.now() - since > HANG_MS + 3_000) {
        hung = true;
        proc.kill('SIGKILL');
      }
    }, 250);
    proc.on('close', (code, signal) => {
      clearInterval(watch);
      const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean);
      const tagged = (tag: string) =>
        stdout
          .split('\n')
          .filter((l) => l.startsWith(`${tag} `))
          .map((l) => JSON.parse(l.slice(tag.length + 1)));
      rmSync(dir, { recursive: true, force: true });
      resolve({
        seed,
        code,
        signal,
        stdout,
        stderr,
        lastCall: lines[lines.length - 1] ?? '(none)',
        hung,
        fails: tagged('FAIL'),
        templates: tagged('TEMPLATE'),
        covered: tagged('COVERED')[0] ?? [],
        done: tagged('DONE')[0],
      });
    });
  });
}

if (isChild) {
  child().catch((err) => {
    process.stderr.write(`fuzz child failed: ${err?.stack ?? err}\n`);
    process.exit(3);
  });
} else {
  // A fixed seed by default, so that `npm test` (and CI) is repeatable; VLK_FUZZ_SEED=random draws one
  // (a longer hunt: run it in a loop), any number repeats a run.
  const env = process.env.VLK_FUZZ_SEED;
  const seed = env === 'random' ? Math.floor(Math.random() * 2 ** 31) : env ? Number(env) : 443788036;
  process.stdout.write(`api_fuzz seed ${seed} (VLK_FUZZ_SEED=${seed} repeats this run)\n`);
  let run: Promise<RunResult> | null = null;
  const result = () => (run ??= runChild(seed));
  const repro = (t: string) => `VLK_FUZZ_SEED=${seed} VLK_FUZZ_ONLY='${t}' node --import tsx test/api_fuzz.test.ts`;

  const Fuzz = suite('api fuzz: every export under hostile arguments');

  Fuzz('every export is fuzzed or listed as not fuzzed, with a reason', async () => {
    const { targets, listed, uncovered } = enumerate();
    assert.equal(uncovered, [], `exports neither fuzzed nor listed in NOT_FUZZED: ${uncovered.join(', ')}`);
    assert.equal(listed.sort(), Object.keys(NOT_FUZZED).sort(), 'NOT_FUZZED names an export that no longer exists');
    const r = await result();
    const missed = targets.map((t) => t.name).filter((n) => !r.covered.includes(n));
    assert.equal(missed, [], `targets never called: ${missed.join(', ')}`);
    assert.ok(targets.length > 200, `${targets.length} targets`);
  });

  Fuzz('random and mostly-valid calls: only typed errors, no crash, no hang', async () => {
    const r = await result();
    if (r.done) process.stdout.write(`api_fuzz: ${r.done.calls} calls in ${r.done.rounds} rounds, ${r.done.ms} ms\n`);
    const report = r.fails.map((f) => `${f.target} (round ${f.round}): ${f.error}\n    args: ${f.args}\n    repeat: ${repro(f.target)}`);
    assert.ok(!r.hung, `a call hung (no progress for ${HANG_MS + 3000} ms): ${r.lastCall}; seed ${seed}`);
    assert.ok(r.signal === null && r.code === 0, `the fuzz process died (status ${r.code}, signal ${r.signal}) during: ${r.lastCall}; seed ${seed}\n${r.stderr.slice(-3000)}`);
    assert.ok(r.done, `the fuzz process ended early: ${r.stderr.slice(-2000)}`);
    assert.equal(report, [], `${report.length} bad outcomes (seed ${seed}):\n${report.join('\n')}`);
  });

  Fuzz('every valid template call succeeds (so mutations reach the checks behind the first)', async () => {
    const r = await result();
    const bad = r.templates.map((t) => `${t.target}: ${t.error}`);
    assert.equal(bad, [], bad.join('\n'));
  });

  Fuzz.run();

  // -------------------------------------------------------------------------------------------
  // Bugs the fuzz loop found, each as a fixed case (docs/bad-inputs.md cites these titles).
  const Found = suite('api fuzz: bugs found, as regression cases');
  const sab = <T extends Int32Array | Uint8Array>(kind: { new (b: SharedArrayBuffer): T; BYTES_PER_ELEMENT: number }, values: number[]): T => {
    const t = new kind(new SharedArrayBuffer(values.length * kind.BYTES_PER_ELEMENT));
    t.set(values);
    return t;
  };
  const q3 = () => gaussianMatrix(3, D, 21);
  const g7 = () => gaussianMatrix(7, D, 22);

  Found('FlatIndex.remove of a Proxy of a Float32Array: ERR_VLK_TYPE naming ids', () => {
    const ix = INSTANCES.FlatIndex() as lib.FlatIndex;
    expectCode(() => ix.remove(new Proxy(new Float32Array(2), {}) as any), 'ERR_VLK_TYPE', /ids/);
    assert.is(ix.size, 7);
    ix.close();
  });

  Found('combinePriors of a sparse array: ERR_VLK_TYPE naming priors[0]', () => {
    expectCode(() => lib.combinePriors(new Array(2) as any), 'ERR_VLK_TYPE', /priors\[0\].*undefined/);
  });

  Found('sinkhornSync with iterations = 2^32: ERR_VLK_INVALID_ARG, also from the raw binding', () => {
    const scores = { data: f32(12, 1), rows: 4, cols: 3 };
    expectCode(() => lib.sinkhornSync(scores, { iterations: 2 ** 32 }), 'ERR_VLK_INVALID_ARG', /options\.iterations.*4294967296/);
    const spec = { b: 4, p: 3, scores: scores.data, epsilon: 0.1, iterations: 2 ** 32 };
    assert.throws(() => lib.binding.sinkhornSync(spec), (e: any) => e.code === 'ERR_VLK_INVALID_ARG' && /iterations.*above 1000000/.test(e.message));
    assert.is(lib.sinkhornSync(scores, { iterations: 1_000_000 }).length, 12);
  });

  Found('raw scanSimilaritySync with q = l = 2^32 (q*l*d wraps to 0) and no words: ERR_VLK_SHAPE, no crash', () => {
    const spec = { q: 2 ** 32, l: 2 ** 32, d: D, items: 1, r: 1, words: new Float32Array(0), regions: f32(D, 2), mode: 't2i', lambda1: 1, lambda2: 1, k: 0, candidates: 1 };
    assert.throws(() => lib.binding.scanSimilaritySync(spec), (e: any) => e.code === 'ERR_VLK_SHAPE' && /words: length 0.*overflows 64-bit arithmetic/.test(e.message));
  });

  Found('SharedArrayBuffer-backed Int32Array and Uint8Array inputs are read like copies', () => {
    const gt = [0, 4, 6];
    const a = lib.rankOfTargetsSync(q3(), g7(), sab(Int32Array, gt), { dim: D });
    const b = lib.rankOfTargetsSync(q3(), g7(), Int32Array.from(gt), { dim: D });
    assert.equal(Array.from(a.best), Array.from(b.best));
    const cand = [0, 3, 6, 1, 2, 5];
    assert.equal(Array.from(lib.rerankSync(q3(), g7(), sab(Int32Array, cand), { k: 2, dim: D }).indices), Array.from(lib.rerankSync(q3(), g7(), Int32Array.from(cand), { k: 2, dim: D }).indices));
    const mask = [1, 0, 1, 1, 0, 1, 1];
    assert.equal(Array.from(lib.searchSync(q3(), g7(), { k: 2, dim: D, allow: sab(Uint8Array, mask) } as any).indices), Array.from(lib.searchSync(q3(), g7(), { k: 2, dim: D, allow: Uint8Array.from(mask) } as any).indices));
  });

  Found('options.dim a symbol or a Proxy: ERR_VLK_SHAPE naming options.dim', () => {
    expectCode(() => lib.relevanceSync(f32(5 * D, 1), { dim: Symbol('d') as any }), 'ERR_VLK_SHAPE', /options\.dim: a symbol/);
    expectCode(() => lib.relevanceSync(f32(5 * D, 1), { dim: new Proxy(new Float32Array(1), {}) as any }), 'ERR_VLK_SHAPE', /options\.dim/);
  });

  Found('tokenMaxSearchSync with dims [symbol, 3, 4]: ERR_VLK_SHAPE naming tokenGallery.dims[0]', () => {
    const g = { data: f32(5 * 3 * D, 1), dims: [Symbol('n'), 3, D] as any };
    expectCode(() => lib.tokenMaxSearchSync(q3(), g, { k: 1, dim: D }), 'ERR_VLK_SHAPE', /tokenGallery\.dims\[0\]/);
  });

  Found('augmentGallerySync with a null-prototype metric: ERR_VLK_INVALID_ARG naming options.metric', () => {
    expectCode(() => lib.augmentGallerySync(g7(), { dim: D, m: 2, metric: Object.create(null) }), 'ERR_VLK_INVALID_ARG', /options\.metric.*an object/);
  });

  Found('relevanceSync with a 4 GiB + 4-byte output and a NaN: ERR_VLK_NON_FINITE, no double free', () => {
    // 32769^2 floats are above Node's 4 GiB external-buffer limit; the result block used to be
    // released twice when Node refused it. A machine with less memory refuses it up front.
    const n = 32769;
    const x = new Float32Array(n).fill(1);
    x[5] = NaN;
    try {
      lib.relevanceSync({ data: x, rows: n, cols: 1 });
      assert.unreachable('NaN accepted');
    } catch (e) {
      assert.instance(e, lib.VlkError);
      assert.ok(['ERR_VLK_NON_FINITE', 'ERR_VLK_OUT_OF_MEMORY'].includes((e as lib.VlkError).code), (e as Error).message);
    }
  });

  Found('scanSimilaritySync whose outputs together exceed memory: ERR_VLK_OUT_OF_MEMORY before allocating', () => {
    // Each of the three q x k outputs fits alone (0.45 of the memory); together they do not.
    const k = Math.floor((0.45 * totalmem()) / 8);
    const inputs = { words: { data: f32(2 * 3 * D, 1), dims: [2, 3, D] }, regions: { data: f32(2 * 3 * 2 * D, 2), dims: [2, 3, 2, D] } };
    expectCode(() => lib.scanSimilaritySync(inputs as any, { k }), 'ERR_VLK_OUT_OF_MEMORY', /bytes/);
  });

  Found('FlatIndex.loadSync of an http: URL and readSafetensorsSync of file://host/x: ERR_VLK_TYPE', () => {
    expectCode(() => lib.FlatIndex.loadSync(new URL('http://example.invalid/x.idx')), 'ERR_VLK_TYPE', /path: expected a local file: URL/);
    expectCode(() => lib.readSafetensorsSync(new URL('file://host.invalid/x.safetensors')), 'ERR_VLK_TYPE', /source: expected a local file: URL/);
  });

  Found('CombinerTrainer.fit with epochs = 2^53: ERR_VLK_INVALID_ARG naming options.epochs', async () => {
    const t = new lib.CombinerTrainer({ dim: D, seed: 1 });
    const data = { image: mat(3, D, 1), text: mat(3, D, 2), target: mat(3, D, 3) };
    const err = await t.fit(data, { epochs: 2 ** 53 }).then(() => undefined, (e) => e);
    assert.instance(err, lib.VlkError);
    assert.is(err.code, 'ERR_VLK_INVALID_ARG');
    assert.match(err.message, /options\.epochs.*above 1000000/);
  });

  Found.run();
}
