// A synthetic gallery with planted near-duplicate groups (test/helpers), fixed seed, for query
// expansion: G random unit centres; each group holds S near-duplicates m = norm(c + sigmaM n)
// (n ~ N(0, I/D), so sigma is the noise-to-signal norm ratio); each query is a noisier view of one
// centre, q = norm(c + sigmaQ n), and its relevant set is that group. Extra distractors (random
// unit vectors) make plain search miss group members; the members' mean is close to the centre,
// which is what attention-weighted expansion recovers.
import { gaussian } from './random';

export interface PlantedGroups {
  dim: number;
  gallery: Float32Array; // N x dim, unit rows (groups first, group g = rows g S .. g S + S - 1)
  n: number;
  queries: Float32Array; // Q x dim, unit rows; query i belongs to group i % groups
  q: number;
  group: Int32Array; // per gallery row: its group, -1 for a distractor
  queryGroup: Int32Array;
  size: number;
}

export function plantedGroups(
  opts: { dim?: number; groups?: number; size?: number; distractors?: number; queries?: number; sigmaM?: number; sigmaQ?: number; seed?: number } = {},
): PlantedGroups {
  const dim = opts.dim ?? 64;
  const groups = opts.groups ?? 100;
  const size = opts.size ?? 10;
  const distractors = opts.distractors ?? 1000;
  const nq = opts.queries ?? groups;
  const sigmaM = opts.sigmaM ?? 1.0;
  const sigmaQ = opts.sigmaQ ?? 2.0;
  const g = gaussian(opts.seed ?? 7004);
  const unit = (v: Float32Array) => {
    let s = 0;
    for (const x of v) s += x * x;
    const r = Math.sqrt(s);
    for (let i = 0; i < v.length; i++) v[i] /= r;
    return v;
  };
  const noise = () => Float32Array.from({ length: dim }, () => g() / Math.sqrt(dim));
  const centres = Array.from({ length: groups }, () => unit(noise()));
  const n = groups * size + distractors;
  const gallery = new Float32Array(n * dim);
  const group = new Int32Array(n).fill(-1);
  for (let c = 0; c < groups; c++) {
    for (let s = 0; s < size; s++) {
      const e = noise();
      const row = unit(Float32Array.from(centres[c], (x, i) => x + sigmaM * e[i]));
      gallery.set(row, (c * size + s) * dim);
      group[c * size + s] = c;
    }
  }
  for (let i = groups * size; i < n; i++) gallery.set(unit(noise()), i * dim);
  const queries = new Float32Array(nq * dim);
  const queryGroup = new Int32Array(nq);
  for (let i = 0; i < nq; i++) {
    const c = i % groups;
    const e = noise();
    queries.set(unit(Float32Array.from(centres[c], (x, j) => x + sigmaQ * e[j])), i * dim);
    queryGroup[i] = c;
  }
  return { dim, gallery, n, queries, q: nq, group, queryGroup, size };
}

/** Mean over queries of |top-k ∩ relevant| / min(k, |relevant|). */
export function recallAt(indices: Int32Array, k: number, stride: number, p: PlantedGroups): number {
  let total = 0;
  for (let i = 0; i < p.q; i++) {
    let hit = 0;
    for (let j = 0; j < k; j++) if (p.group[indices[i * stride + j]] === p.queryGroup[i]) hit++;
    total += hit / Math.min(k, p.size);
  }
  return total / p.q;
}
