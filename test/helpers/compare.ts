// Bit-level comparison of search results for the JS tests (test/helpers): indices and scores must
// match byte for byte (ISA paths, thread counts, sync/async and batch splits promise identical output).

export interface ResultLike {
  indices: Int32Array;
  scores: Float32Array;
  k: number;
  count: number;
}

function bytes(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** Throws naming the first differing entry when a and b are not bit-identical. */
export function assertSameResult(a: ResultLike, b: ResultLike, what: string): void {
  if (a.k !== b.k || a.count !== b.count) {
    throw new Error(`${what}: shape differs: k ${a.k} vs ${b.k}, count ${a.count} vs ${b.count}`);
  }
  if (a.indices.length !== b.indices.length || a.scores.length !== b.scores.length) {
    throw new Error(`${what}: lengths differ: ${a.indices.length}/${a.scores.length} vs ${b.indices.length}/${b.scores.length}`);
  }
  if (bytes(a.indices).equals(bytes(b.indices)) && bytes(a.scores).equals(bytes(b.scores))) return;
  const sa = new Uint32Array(a.scores.buffer, a.scores.byteOffset, a.scores.length);
  const sb = new Uint32Array(b.scores.buffer, b.scores.byteOffset, b.scores.length);
  for (let p = 0; p < a.indices.length; p++) {
    if (a.indices[p] !== b.indices[p] || sa[p] !== sb[p]) {
      const q = Math.floor(p / a.k);
      throw new Error(
        `${what}: first difference at query ${q} position ${p % a.k}: ` +
          `(row ${a.indices[p]}, score ${a.scores[p]}) vs (row ${b.indices[p]}, score ${b.scores[p]})`,
      );
    }
  }
}

/** Concatenates results of consecutive query batches (each count x k) into one Q x k result. */
export function concatResults(parts: ResultLike[]): ResultLike {
  const k = parts[0].k;
  const total = parts.reduce((s, r) => s + r.count, 0);
  const indices = new Int32Array(total * k);
  const scores = new Float32Array(total * k);
  let count = 0;
  for (const r of parts) {
    indices.set(r.indices.subarray(0, r.count * k), count * k);
    scores.set(r.scores.subarray(0, r.count * k), count * k);
    count += r.count;
  }
  return { indices, scores, k, count };
}
