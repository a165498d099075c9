// Float64 reference for search (test/reference): every score of every query (Q x N, row-major),
// computed directly in float64 (ip: sum q*g; cosine: ip / (|q| |g|), 0 when either is a zero vector;
// l2: sum (q - g)^2), and a checker that compares a library result (Q x k, row-major) against it.

export type Metric = 'ip' | 'cosine' | 'l2';

export interface Reference {
  metric: Metric;
  q: number;
  n: number;
  d: number;
  /** Q x N scores, row-major. */
  scores: Float64Array;
  /** |q| per query and |g| per gallery row, float64. */
  qNorms: Float64Array;
  gNorms: Float64Array;
  /** The gallery the scores came from (planted-tie detection compares its rows bit for bit). */
  gallery: Float32Array;
}

export interface ResultLike {
  indices: Int32Array;
  scores: Float32Array;
  k: number;
  count: number;
}

/** Relative tolerance of ip/cosine scores and of ordering, as a fraction of |q| |g|. */
export const IP_REL_TOL = 1e-5;
/** Relative tolerance of l2 distances: the library re-scores l2 in float64 and rounds once. */
export const L2_REL_TOL = 1e-6;

function norms(m: Float32Array, rows: number, d: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const o = r * d;
    for (let c = 0; c < d; c++) s += m[o + c] * m[o + c];
    out[r] = Math.sqrt(s);
  }
  return out;
}

/** All Q x N reference scores. queries: Q x d, gallery: N x d, both row-major. */
export function referenceSearch(
  queries: Float32Array,
  gallery: Float32Array,
  d: number,
  metric: Metric,
): Reference {
  const q = queries.length / d;
  const n = gallery.length / d;
  if (!Number.isInteger(q) || !Number.isInteger(n)) throw new Error('reference: bad shapes');
  const scores = new Float64Array(q * n);
  const qNorms = norms(queries, q, d);
  const gNorms = norms(gallery, n, d);
  for (let i = 0; i < q; i++) {
    const qo = i * d;
    for (let j = 0; j < n; j++) {
      const go = j * d;
      let s = 0;
      if (metric === 'l2') {
        for (let c = 0; c < d; c++) {
          const diff = queries[qo + c] - gallery[go + c];
          s += diff * diff;
        }
      } else {
        for (let c = 0; c < d; c++) s += queries[qo + c] * gallery[go + c];
        if (metric === 'cosine') {
          const den = qNorms[i] * gNorms[j];
          s = den === 0 ? 0 : s / den;
        }
      }
      scores[i * n + j] = s;
    }
  }
  return { metric, q, n, d, scores, qNorms, gNorms, gallery };
}

/** True when score a ranks strictly before score b under the metric. */
function better(metric: Metric, a: number, b: number): boolean {
  return metric === 'l2' ? a < b : a > b;
}

/** All N gallery rows for query i, best first, ties broken by lower index. */
export function referenceOrder(ref: Reference, i: number): Int32Array {
  const row = ref.scores.subarray(i * ref.n, (i + 1) * ref.n);
  const order = Array.from({ length: ref.n }, (_, j) => j);
  order.sort((a, b) => {
    if (row[a] !== row[b]) return better(ref.metric, row[a], row[b]) ? -1 : 1;
    return a - b;
  });
  return Int32Array.from(order);
}

/** Allowed |score difference| between rows a and b of query i before they count as distinct. */
function orderTol(ref: Reference, i: number, a: number, b: number): number {
  const row = ref.scores.subarray(i * ref.n, (i + 1) * ref.n);
  switch (ref.metric) {
    case 'ip':
      return IP_REL_TOL * ref.qNorms[i] * Math.max(ref.gNorms[a], ref.gNorms[b]);
    case 'cosine':
      return IP_REL_TOL;
    case 'l2':
      return L2_REL_TOL * Math.max(row[a], row[b]);
  }
}

/** Allowed |library score - reference score| for row j of query i. */
function scoreTol(ref: Reference, i: number, j: number): number {
  switch (ref.metric) {
    case 'ip':
      return IP_REL_TOL * ref.qNorms[i] * ref.gNorms[j];
    case 'cosine':
      return IP_REL_TOL;
    case 'l2':
      return L2_REL_TOL * ref.scores[i * ref.n + j];
  }
}

function sameRow(g: Float32Array, d: number, a: number, b: number): boolean {
  const x = new Uint32Array(g.buffer, g.byteOffset + a * d * 4, d);
  const y = new Uint32Array(g.buffer, g.byteOffset + b * d * 4, d);
  for (let c = 0; c < d; c++) if (x[c] !== y[c]) return false;
  return true;
}

/**
 * Compares a result with the reference and returns the problems found (empty when it passes).
 * Rules: indices are distinct rows in [0, N); each score matches the reference score of its row
 * (ip: 1e-5 x |q||g|, cosine: 1e-5, l2: 1e-6 relative); the library's own scores are sorted best
 * first with equal scores in ascending index order; every position whose reference score is more
 * than the tolerance away from both neighbours in reference order holds exactly the reference row;
 * positions inside a near-tie group hold members of that group; and for planted ties (bit-identical
 * gallery rows) the lower index always comes first and is never passed over for a higher one.
 */
export function checkSearch(ref: Reference, result: ResultLike, k: number, maxProblems = 20): string[] {
  const problems: string[] = [];
  const add = (m: string) => {
    if (problems.length < maxProblems) problems.push(m);
  };
  const { n, metric } = ref;
  if (result.k !== k) add(`result.k = ${result.k}, expected ${k}`);
  if (result.count !== ref.q) add(`result.count = ${result.count}, expected ${ref.q}`);
  if (!(result.indices instanceof Int32Array)) add('indices is not an Int32Array');
  if (!(result.scores instanceof Float32Array)) add('scores is not a Float32Array');
  if (result.indices.length !== ref.q * k) add(`indices.length = ${result.indices.length}, expected ${ref.q * k}`);
  if (result.scores.length !== ref.q * k) add(`scores.length = ${result.scores.length}, expected ${ref.q * k}`);
  if (problems.length) return problems;

  for (let i = 0; i < ref.q; i++) {
    const row = ref.scores.subarray(i * n, (i + 1) * n);
    const r = result.indices.subarray(i * k, (i + 1) * k);
    const v = result.scores.subarray(i * k, (i + 1) * k);
    const tag = (p: number) => `query ${i} position ${p}`;

    // Rows valid and distinct.
    const seen = new Set<number>();
    let valid = true;
    for (let p = 0; p < k; p++) {
      if (!Number.isInteger(r[p]) || r[p] < 0 || r[p] >= n) {
        add(`${tag(p)}: index ${r[p]} out of range [0, ${n})`);
        valid = false;
      } else if (seen.has(r[p])) {
        add(`${tag(p)}: index ${r[p]} repeated`);
        valid = false;
      }
      seen.add(r[p]);
    }
    if (!valid) continue;

    // Scores against the reference score of the same row.
    for (let p = 0; p < k; p++) {
      const expected = row[r[p]];
      const tol = scoreTol(ref, i, r[p]);
      if (!Number.isFinite(v[p]) || Math.abs(v[p] - expected) > tol) {
        add(`${tag(p)}: score of row ${r[p]} is ${v[p]}, reference ${expected} (tolerance ${tol.toExponential(2)})`);
      }
    }

    // The library's own order: sorted by its scores, equal scores by ascending index.
    for (let p = 0; p + 1 < k; p++) {
      const ok = better(metric, v[p], v[p + 1]) || (v[p] === v[p + 1] && r[p] < r[p + 1]);
      if (!ok) add(`${tag(p)}: (row ${r[p]}, ${v[p]}) is ranked before (row ${r[p + 1]}, ${v[p + 1]})`);
    }

    // Reference order in near-tie groups: a group ends where the gap exceeds the tolerance.
    const order = referenceOrder(ref, i);
    let a = 0;
    while (a < k) {
      let b = a + 1;
      while (b < n && Math.abs(row[order[b]] - row[order[b - 1]]) <= orderTol(ref, i, order[b], order[b - 1])) b++;
      if (b - a === 1) {
        if (r[a] !== order[a]) {
          add(`${tag(a)}: got row ${r[a]} (reference score ${row[r[a]]}), expected row ${order[a]} (reference score ${row[order[a]]})`);
        }
      } else {
        const members = new Set<number>();
        for (let j = a; j < b; j++) members.add(order[j]);
        for (let p = a; p < Math.min(b, k); p++) {
          if (!members.has(r[p])) {
            add(`${tag(p)}: got row ${r[p]} (reference score ${row[r[p]]}), expected one of the near-tied rows at reference positions ${a}..${b - 1} (scores ${row[order[a]]}..${row[order[b - 1]]})`);
          }
        }
      }
      a = b;
    }

    // Planted ties: bit-identical gallery rows score identically, so the lower index comes first.
    const byScore = new Map<number, number[]>();
    for (let j = 0; j < n; j++) {
      const list = byScore.get(row[j]);
      if (list) list.push(j);
      else byScore.set(row[j], [j]);
    }
    const position = new Map<number, number>();
    for (let p = 0; p < k; p++) position.set(r[p], p);
    for (let p = 0; p < k; p++) {
      const same = byScore.get(row[r[p]])!;
      if (same.length < 2) continue;
      for (const j of same) {
        if (j >= r[p] || !sameRow(ref.gallery, ref.d, j, r[p])) continue;
        const pj = position.get(j);
        if (pj === undefined || pj > p) {
          add(`${tag(p)}: row ${r[p]} is a duplicate of row ${j}, which must come first (found at ${pj === undefined ? 'no position' : `position ${pj}`})`);
        }
      }
    }
  }
  return problems;
}

/** Throws an Error listing the problems checkSearch finds. `what` names the case in the message. */
export function assertSearch(ref: Reference, result: ResultLike, k: number, what: string): void {
  const problems = checkSearch(ref, result, k);
  if (problems.length) {
    throw new Error(`${what} (Q=${ref.q}, N=${ref.n}, D=${ref.d}, k=${k}, ${ref.metric}):\n  ${problems.join('\n  ')}`);
  }
}
