// Deterministic benchmark data: Gaussian vectors normalised to unit length, row-major N x D float32.
// Bench support layer: the JS generator is the single source; the bytes are cached as .npy under
// os.tmpdir() so the Python peers read exactly the same matrix.
import { closeSync, existsSync, openSync, readSync, renameSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Bump when the generator changes, so stale cache files are never reused.
const GENERATOR_VERSION = 1;

// xoshiro128** seeded through splitmix32: 32-bit integer arithmetic only, so every JS engine yields
// the same stream (Math.random is neither seedable nor specified).
function makeRng(seed) {
  let x = seed >>> 0;
  const splitmix = () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let s0 = splitmix(), s1 = splitmix(), s2 = splitmix(), s3 = splitmix();
  return () => {
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 11);
    return r;
  };
}

function rotl(v, n) {
  return (v << n) | (v >>> (32 - n));
}

/** Standard normal sampler (Box-Muller, both outputs used) over a seeded uniform stream. */
export function makeGaussian(seed) {
  const next = makeRng(seed);
  let spare = 0;
  let hasSpare = false;
  return () => {
    if (hasSpare) {
      hasSpare = false;
      return spare;
    }
    // (0, 1]: 32 random bits plus half a step, so log() never sees 0.
    const u1 = (next() + 0.5) / 4294967296;
    const u2 = next() / 4294967296;
    const r = Math.sqrt(-2 * Math.log(u1));
    spare = r * Math.sin(2 * Math.PI * u2);
    hasSpare = true;
    return r * Math.cos(2 * Math.PI * u2);
  };
}

/** rows x cols float32, each row an independent Gaussian vector scaled to unit L2 norm. */
export function unitGaussian(rows, cols, seed) {
  const gauss = makeGaussian(seed);
  const out = new Float32Array(rows * cols);
  const row = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    let ss = 0;
    for (let j = 0; j < cols; j++) {
      const v = gauss();
      row[j] = v;
      ss += v * v;
    }
    const inv = 1 / Math.sqrt(ss);
    const base = i * cols;
    for (let j = 0; j < cols; j++) out[base + j] = row[j] * inv;
  }
  return out;
}

/** NumPy .npy v1.0 header for a C-order little-endian float32 matrix, padded to 64 bytes. */
function npyHeader(rows, cols) {
  let dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
  const pad = 64 - ((10 + dict.length + 1) % 64);
  dict += ' '.repeat(pad % 64) + '\n';
  const buf = Buffer.alloc(10 + dict.length);
  buf.write('\x93NUMPY', 0, 'latin1');
  buf[6] = 1;
  buf[7] = 0;
  buf.writeUInt16LE(dict.length, 8);
  buf.write(dict, 10, 'latin1');
  return buf;
}

/**
 * The unit-Gaussian matrix for (rows, cols, seed), generated once and cached as .npy in os.tmpdir().
 * Returns { data: Float32Array (rows x cols), path, cached }.
 */
export function cachedUnitGaussian(rows, cols, seed) {
  const path = join(tmpdir(), `vlk-bench-unitgauss-v${GENERATOR_VERSION}-${rows}x${cols}-s${seed}.npy`);
  const header = npyHeader(rows, cols);
  const expected = header.length + rows * cols * 4;
  if (existsSync(path) && statSync(path).size === expected) {
    const fd = openSync(path, 'r');
    try {
      const head = Buffer.alloc(header.length);
      readSync(fd, head, 0, head.length, 0);
      if (head.equals(header)) {
        // Read straight into the matrix's own buffer: one 200 MB copy, not two.
        const data = new Float32Array(rows * cols);
        readInto(fd, new Uint8Array(data.buffer), header.length, path);
        return { data, path, cached: true };
      }
    } finally {
      closeSync(fd);
    }
  }
  const data = unitGaussian(rows, cols, seed);
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeAll(fd, header);
    writeAll(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  return { data, path, cached: false };
}

/** Reads a C-order little-endian float32 2-D .npy file (as written above) into { data, rows, cols }. */
export function loadNpy(path) {
  const fd = openSync(path, 'r');
  try {
    const pre = Buffer.alloc(10);
    readSync(fd, pre, 0, 10, 0);
    if (pre.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${path}: not a .npy file`);
    const headerLen = pre.readUInt16LE(8);
    const dictBuf = Buffer.alloc(headerLen);
    readSync(fd, dictBuf, 0, headerLen, 10);
    const dict = dictBuf.toString('latin1');
    const shape = /'shape': \((\d+), (\d+)\)/.exec(dict);
    if (!dict.includes("'<f4'") || !dict.includes("'fortran_order': False") || !shape) {
      throw new Error(`${path}: expected a C-order float32 matrix, header is ${dict.trim()}`);
    }
    const rows = Number(shape[1]);
    const cols = Number(shape[2]);
    const data = new Float32Array(rows * cols);
    readInto(fd, new Uint8Array(data.buffer), 10 + headerLen, path);
    return { data, rows, cols };
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd, bytes) {
  for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done);
}

function readInto(fd, bytes, position, path) {
  let done = 0;
  while (done < bytes.length) {
    const n = readSync(fd, bytes, done, Math.min(1 << 30, bytes.length - done), position + done);
    if (n === 0) throw new Error(`${path}: file ends after ${done} of ${bytes.length} data bytes`);
    done += n;
  }
}
