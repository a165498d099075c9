// Minimal .npy reader for the real-data tests (test/helpers): format versions 1-3, little-endian or
// byte-sized dtypes (u1, f4, i4), C order only. Returns the shape and a typed array copy of the data.
import { readFileSync } from 'node:fs';

export type NpyArray =
  | { dtype: 'u1'; shape: number[]; data: Uint8Array }
  | { dtype: 'f4'; shape: number[]; data: Float32Array }
  | { dtype: 'i4'; shape: number[]; data: Int32Array };

export function readNpy(file: string): NpyArray {
  const buf = readFileSync(file);
  if (buf.length < 10 || buf[0] !== 0x93 || buf.toString('latin1', 1, 6) !== 'NUMPY') {
    throw new Error(`${file}: not a .npy file`);
  }
  const major = buf[6];
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = buf.readUInt16LE(8);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    headerLen = buf.readUInt32LE(8);
    headerStart = 12;
  } else {
    throw new Error(`${file}: unsupported .npy version ${major}`);
  }
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', headerStart, headerStart + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new Error(`${file}: cannot parse header ${header}`);
  }
  if (fortran !== 'False') throw new Error(`${file}: Fortran order is not supported`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const start = headerStart + headerLen;
  const body = buf.subarray(start);
  // Copy into a fresh ArrayBuffer so the typed array is aligned whatever the header length.
  const bytes = (n: number) => {
    if (body.length < n) throw new Error(`${file}: ${body.length} data bytes, expected ${n}`);
    const ab = new ArrayBuffer(n);
    new Uint8Array(ab).set(body.subarray(0, n));
    return ab;
  };
  switch (descr) {
    case '|u1':
    case '<u1':
      return { dtype: 'u1', shape, data: new Uint8Array(bytes(count)) };
    case '<f4':
      return { dtype: 'f4', shape, data: new Float32Array(bytes(count * 4)) };
    case '<i4':
      return { dtype: 'i4', shape, data: new Int32Array(bytes(count * 4)) };
    default:
      throw new Error(`${file}: unsupported dtype ${descr}`);
  }
}
