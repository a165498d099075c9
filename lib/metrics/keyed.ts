// Embeddings keyed by image name (lib, pure TypeScript): a Map name -> vector or { names, matrix },
// resolved into row-major gallery matrices in a benchmark's gallery order, and the GeneCIS metric
// from composed query embeddings (templates x D) scored against each template's 15 candidates.
import { types } from 'node:util';
import { describe, isRecord, readMatrix } from '../args';
import { VlkError } from '../errors';
import type { MatrixInput } from '../types';
import { genecis, type GenecisReport } from './composed';
import { readTies, type Ties } from './common';
import type { GenecisKey, GenecisTemplate } from './loaders';

/**
 * Image embeddings keyed by name (or GeneCIS id): a Map name -> Float32Array (all of one length),
 * or { names, matrix } with row i of the matrix (names.length x D) the embedding of names[i].
 */
export type KeyedEmbeddings =
  | ReadonlyMap<string | number, Float32Array>
  | { names: ReadonlyArray<string | number>; matrix: MatrixInput };

/** Keyed embeddings after checks: their dim and a lookup returning a view of one vector. */
export interface KeyedLookup {
  dim: number;
  get(key: string | number, name: string): Float32Array;
}

/** @throws VlkError ERR_VLK_TYPE, ERR_VLK_SHAPE, ERR_VLK_EMPTY, ERR_VLK_INVALID_ARG */
export function readKeyed(value: unknown, name: string): KeyedLookup {
  if (value instanceof Map) {
    let dim = -1;
    for (const [k, v] of value) {
      if (!types.isFloat32Array(v)) throw new VlkError('ERR_VLK_TYPE', `${name}.get(${JSON.stringify(k)}): expected a Float32Array, got ${describe(v)}`);
      if (dim < 0) dim = v.length;
      else if (v.length !== dim) {
        throw new VlkError('ERR_VLK_DIM_MISMATCH', `${name}.get(${JSON.stringify(k)}): length ${v.length}, the others have ${dim}`);
      }
    }
    if (dim <= 0) throw new VlkError('ERR_VLK_EMPTY', `${name}: no embeddings (or zero-length ones)`);
    return {
      dim,
      get(key, at) {
        const v = value.get(key);
        if (v === undefined) throw new VlkError('ERR_VLK_INVALID_ARG', `${at}: ${JSON.stringify(key)} has no embedding in ${name}`);
        return v;
      },
    };
  }
  if (!isRecord(value) || !Array.isArray(value.names)) {
    throw new VlkError('ERR_VLK_TYPE', `${name}: expected a Map name -> Float32Array or { names, matrix }, got ${describe(value)}`);
  }
  const names = value.names as Array<string | number>;
  if (names.length === 0) throw new VlkError('ERR_VLK_EMPTY', `${name}.names: no names`);
  const arg = readMatrix(value.matrix, `${name}.matrix`);
  let data: Float32Array;
  let dim: number;
  if ('plain' in arg) {
    data = arg.plain;
    if (data.length % names.length !== 0) {
      throw new VlkError('ERR_VLK_SHAPE', `${name}.matrix: length ${data.length} is not a multiple of ${names.length} names`);
    }
    dim = data.length / names.length;
  } else {
    data = arg.view.data;
    dim = arg.view.cols;
    if (arg.view.rows !== names.length) {
      throw new VlkError('ERR_VLK_SHAPE', `${name}.matrix: ${arg.view.rows} rows, expected ${names.length} (one per name)`);
    }
  }
  if (dim === 0) throw new VlkError('ERR_VLK_EMPTY', `${name}.matrix: dim 0`);
  const index = new Map<string | number, number>();
  names.forEach((n, i) => {
    if (typeof n !== 'string' && typeof n !== 'number') throw new VlkError('ERR_VLK_TYPE', `${name}.names[${i}]: expected a string or number, got ${describe(n)}`);
    if (index.has(n)) throw new VlkError('ERR_VLK_INVALID_ARG', `${name}.names: ${JSON.stringify(n)} appears twice (positions ${index.get(n)} and ${i})`);
    index.set(n, i);
  });
  return {
    dim,
    get(key, at) {
      const i = index.get(key);
      if (i === undefined) throw new VlkError('ERR_VLK_INVALID_ARG', `${at}: ${JSON.stringify(key)} is not in ${name}.names`);
      return data.subarray(i * dim, (i + 1) * dim);
    },
  };
}

/** The gallery's embeddings, row i = names[i], as one row-major names.length x dim Float32Array. */
export function galleryMatrix(lookup: KeyedLookup, names: ReadonlyArray<string | number>, name: string): Float32Array {
  const out = new Float32Array(names.length * lookup.dim);
  names.forEach((n, i) => out.set(lookup.get(n, `${name}[${i}]`), i * lookup.dim));
  return out;
}

/**
 * GeneCIS from embeddings: `queries` holds one composed query per template (templates x D, the
 * output of a combiner or an image+text baseline), `embeddings` the candidate images keyed by the
 * templates' ids (COCO val2017 ids for the object tasks), `templates` the output of
 * {@link loadGenecis}. Scores are float64 cosine similarities (default; `metric: 'ip'` for inner
 * products) of each query with its [target, ...gallery] candidates, then {@link genecis}.
 *
 * @example
 * ```ts
 * const templates = loadGenecis('/data/genecis-annotations/focus_object.json');
 * genecisFromEmbeddings({ queries: { data: q, rows: templates.length, cols: 640 }, embeddings: byId, templates }).r1;
 * ```
 * @throws VlkError ERR_VLK_TYPE, ERR_VLK_SHAPE, ERR_VLK_DIM_MISMATCH, ERR_VLK_EMPTY, ERR_VLK_NON_FINITE,
 *   ERR_VLK_INVALID_ARG (an id without embedding, a zero vector under cosine)
 */
export function genecisFromEmbeddings(input: {
  queries: MatrixInput;
  embeddings: KeyedEmbeddings;
  templates: readonly GenecisTemplate[];
  metric?: 'cosine' | 'ip';
  ties?: Ties;
}): GenecisReport {
  if (!isRecord(input)) throw new VlkError('ERR_VLK_TYPE', `genecisFromEmbeddings: expected an object, got ${describe(input)}`);
  const ties = readTies(input.ties, 'genecisFromEmbeddings.ties');
  const metric = input.metric ?? 'cosine';
  if (metric !== 'cosine' && metric !== 'ip') {
    throw new VlkError('ERR_VLK_INVALID_ARG', `genecisFromEmbeddings.metric: expected 'cosine' or 'ip', got ${describe(metric)}`);
  }
  const lookup = readKeyed(input.embeddings, 'genecisFromEmbeddings.embeddings');
  const templates = input.templates;
  if (!Array.isArray(templates) || templates.length === 0) {
    throw new VlkError('ERR_VLK_EMPTY', 'genecisFromEmbeddings.templates: expected a non-empty array of templates');
  }
  const arg = readMatrix(input.queries, 'genecisFromEmbeddings.queries');
  const q = 'plain' in arg ? arg.plain : arg.view.data;
  const d = lookup.dim;
  if (('view' in arg && arg.view.cols !== d) || q.length !== templates.length * d) {
    throw new VlkError(
      'ERR_VLK_DIM_MISMATCH',
      `genecisFromEmbeddings.queries: expected ${templates.length} templates x dim ${d} = ${templates.length * d} values, got ${q.length}`,
    );
  }
  const c = templates[0].candidates.length;
  const scores = new Float64Array(templates.length * c);
  const norm = (v: Float32Array, off: number, at: string) => {
    let s = 0;
    for (let x = 0; x < d; x++) s += v[off + x] * v[off + x];
    if (!Number.isFinite(s)) throw new VlkError('ERR_VLK_NON_FINITE', `${at}: has a non-finite value`);
    if (metric === 'ip') return 1;
    if (s === 0) throw new VlkError('ERR_VLK_INVALID_ARG', `${at}: a zero vector has no cosine similarity`);
    return Math.sqrt(s);
  };
  templates.forEach((t, i) => {
    const at = `genecisFromEmbeddings.templates[${i}]`;
    if (!isRecord(t) || !Array.isArray(t.candidates)) throw new VlkError('ERR_VLK_TYPE', `${at}: expected a template with candidates`);
    if (t.candidates.length !== c) {
      throw new VlkError('ERR_VLK_SHAPE', `${at}: ${t.candidates.length} candidates, template 0 has ${c}`);
    }
    const nq = norm(q, i * d, `genecisFromEmbeddings.queries row ${i}`);
    t.candidates.forEach((key: GenecisKey, j: number) => {
      const v = lookup.get(key, `${at}.candidates[${j}]`);
      let dot = 0;
      for (let x = 0; x < d; x++) dot += q[i * d + x] * v[x];
      scores[i * c + j] = dot / (nq * norm(v, 0, `embedding of ${JSON.stringify(key)}`));
    });
  });
  return genecis({ scores: { data: scores, rows: templates.length, cols: c }, ties });
}
