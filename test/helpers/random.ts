// Seeded random inputs for the JS tests (test/helpers): a 32-bit PRNG (mulberry32), Gaussian samples
// by Box-Muller, and row-major Float32Array matrices (rows x cols) built from them.

/** Deterministic PRNG returning floats in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples (Box-Muller; both outputs of each pair are used). */
export function gaussian(seed: number): () => number {
  const u = rng(seed);
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    // 1 - u() lies in (0, 1], so the log is finite.
    const r = Math.sqrt(-2 * Math.log(1 - u()));
    const t = 2 * Math.PI * u();
    spare = r * Math.sin(t);
    return r * Math.cos(t);
  };
}

/** rows x cols matrix of N(0, 1) samples, row-major. */
export function gaussianMatrix(rows: number, cols: number, seed: number): Float32Array {
  const g = gaussian(seed);
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < out.length; i++) out[i] = g();
  return out;
}

/** rows x cols matrix of uniform samples in [-1, 1), row-major (cheap, for large timing inputs). */
export function uniformMatrix(rows: number, cols: number, seed: number): Float32Array {
  const u = rng(seed);
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < out.length; i++) out[i] = 2 * u() - 1;
  return out;
}

/** Scales each row to unit length (zero rows stay zero). */
export function normalizeRows(m: Float32Array, cols: number): Float32Array {
  for (let r = 0; r * cols < m.length; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += m[r * cols + c] * m[r * cols + c];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let c = 0; c < cols; c++) m[r * cols + c] *= inv;
  }
  return m;
}
