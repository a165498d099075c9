// Training the combiner head in Node (lib): CombinerTrainer owns a native combiner (weights,
// gradients, AdamW state; core/compose/combiner_trainer) and fits it on (reference image,
// modification text, target image) feature triplets with the contrastive objective of CLIP4Cir /
// GeneCIS: batches of a seeded shuffle, one native step per batch on the addon's pool, progress
// and AbortSignal between steps; the weights come out named as the PyTorch combiner's, ready for
// compose() or writeSafetensors().
import { atApi, fromNative, VlkError } from './errors';
import { describe, isRecord, readMatrix, shapeMatrix } from './args';
import { readSignal, runCancellable } from './cancel';
import { binding } from './loader';
import { writeSafetensors } from './safetensors';
import type { MatrixInput } from './types';

/** Options of {@link CombinerTrainer}. */
export interface CombinerTrainerOptions {
  /** Feature dimension D. */
  dim: number;
  /** Projection width P; default 4D (the paper's). */
  projection?: number;
  /** Hidden width H; default 8D. */
  hidden?: number;
  /** Seeds the initialisation, the shuffles and the dropout masks; default 0. */
  seed?: number;
  /** AdamW learning rate (default 1e-4), betas (0.9, 0.999), eps (1e-8), weight decay (0.01). */
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Dropout probability while training (default 0.5, as CLIP4Cir). */
  dropout?: number;
  /** Softmax temperature; default 0.01 (logit scale 100, as CLIP4Cir). */
  temperature?: number;
  /** Label smoothing of the contrastive loss; default 0. */
  labelSmoothing?: number;
  /** Triplets per step (>= 2); default 128. */
  batchSize?: number;
  /** Parallel width per step; default: the pool size. */
  threads?: number;
}

/** Training triplets, B x D each (Float32Array of B * dim values or a matrix view). */
export interface Triplets {
  image: MatrixInput;
  text: MatrixInput;
  target: MatrixInput;
}

/** Progress of {@link CombinerTrainer.fit}, after each step. */
export interface TrainProgress {
  epoch: number;
  step: number;
  steps: number;
  loss: number;
}

function mulberry(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function positive(v: unknown, name: string, fallback: number, integer = false): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.${name}: ${describe(v)} is not a ${integer ? 'positive integer' : 'number > 0'}`);
  }
  return v;
}

/**
 * Fits a combiner head on feature triplets.
 *
 * @example
 * ```ts
 * const trainer = new CombinerTrainer({ dim: 512, lr: 1e-4, seed: 1 });
 * await trainer.fit({ image, text, target }, { epochs: 5, onProgress: (p) => console.log(p.loss) });
 * const queries = await compose(refs, mods, { weights: trainer.weights() });
 * await trainer.save('combiner.safetensors');      // loads in PyTorch with safetensors
 * ```
 */
export class CombinerTrainer {
  readonly dim: number;
  readonly projection: number;
  readonly hidden: number;
  #handle: unknown;
  #opts: Record<string, number>;
  #batch: number;
  #seed: number;
  #epochs = 0;

  constructor(options: CombinerTrainerOptions) {
    const parsed = atApi(() => {
      if (!isRecord(options)) throw new VlkError('ERR_VLK_TYPE', `options: expected an object such as { dim: 512 }, got ${describe(options)}`);
      const dim = positive(options.dim, 'dim', NaN, true);
      const dropout = options.dropout ?? 0.5;
      if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) {
        throw new VlkError('ERR_VLK_INVALID_ARG', `options.dropout: ${describe(dropout)} is not in [0, 1)`);
      }
      const ls = options.labelSmoothing ?? 0;
      if (typeof ls !== 'number' || !(ls >= 0 && ls < 1)) {
        throw new VlkError('ERR_VLK_INVALID_ARG', `options.labelSmoothing: ${describe(ls)} is not in [0, 1)`);
      }
      const batch = positive(options.batchSize, 'batchSize', 128, true);
      if (batch < 2) throw new VlkError('ERR_VLK_INVALID_ARG', 'options.batchSize: a contrastive step needs >= 2');
      return {
        dim,
        projection: positive(options.projection, 'projection', 4 * dim, true),
        hidden: positive(options.hidden, 'hidden', 8 * dim, true),
        batch,
        seed: options.seed ?? 0,
        opts: {
          lr: positive(options.lr, 'lr', 1e-4),
          beta1: options.beta1 ?? 0.9,
          beta2: options.beta2 ?? 0.999,
          eps: positive(options.eps, 'eps', 1e-8),
          weightDecay: options.weightDecay ?? 0.01,
          dropout,
          scale: 1 / positive(options.temperature, 'temperature', 0.01),
          labelSmoothing: ls,
          ...(options.threads === undefined ? {} : { threads: options.threads }),
        },
      };
    }, CombinerTrainer);
    this.dim = parsed.dim;
    this.projection = parsed.projection;
    this.hidden = parsed.hidden;
    this.#batch = parsed.batch;
    this.#seed = parsed.seed;
    this.#opts = parsed.opts;
    try {
      this.#handle = binding.combinerTrainerCreate(this.dim, this.projection, this.hidden, this.#seed);
    } catch (err) {
      throw fromNative(err, CombinerTrainer);
    }
  }

  /**
   * Trains for `epochs` passes over the triplets (each a seeded shuffle cut into batches; a last
   * batch of fewer than 2 is dropped). Resolves with the mean loss of each epoch.
   */
  async fit(data: Triplets, options: { epochs?: number; onProgress?: (p: TrainProgress) => void; signal?: AbortSignal } = {}): Promise<number[]> {
    const api = CombinerTrainer.prototype.fit;
    const { image, text, target, n, epochs, signal } = atApi(() => {
      if (!isRecord(data)) throw new VlkError('ERR_VLK_TYPE', `data: expected { image, text, target }, got ${describe(data)}`);
      const m = (v: unknown, name: string) => shapeMatrix(readMatrix(v, name), name, this.dim);
      const image = m(data.image, 'image');
      const text = m(data.text, 'text');
      const target = m(data.target, 'target');
      if (text.rows !== image.rows || target.rows !== image.rows) {
        throw new VlkError('ERR_VLK_SHAPE', `image, text and target have ${image.rows}, ${text.rows} and ${target.rows} rows (they must be equal)`);
      }
      return {
        image,
        text,
        target,
        n: image.rows,
        epochs: positive(options.epochs, 'epochs', 1, true),
        signal: readSignal(options.signal, 'options.signal'),
      };
    }, api);
    const d = this.dim;
    const b = Math.min(this.#batch, n);
    const losses: number[] = [];
    const bufs = [new Float32Array(b * d), new Float32Array(b * d), new Float32Array(b * d)];
    const srcs = [image, text, target];
    for (let e = 0; e < epochs; e++) {
      const rand = mulberry((this.#seed ^ 0x9e3779b9) + this.#epochs * 7919);
      this.#epochs++;
      const order = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
      const steps = Math.floor(n / b);
      let sum = 0;
      for (let s = 0; s < steps; s++) {
        for (let r = 0; r < b; r++) {
          const row = order[s * b + r];
          for (let t = 0; t < 3; t++) {
            const src = srcs[t];
            const off = row * src.cols;
            bufs[t].set(src.data.subarray(off, off + d), r * d);
          }
        }
        const loss = await runCancellable(signal, api, (token) =>
          binding.combinerTrainerStepAsync(this.#handle, bufs[0], bufs[1], bufs[2], this.#opts, token),
        );
        sum += loss;
        options.onProgress?.({ epoch: e, step: s, steps, loss });
      }
      losses.push(sum / Math.max(steps, 1));
    }
    return losses;
  }

  /** The current weights, named and shaped as the PyTorch combiner's (copies). */
  weights(): Record<string, Float32Array> {
    const t = binding.combinerTrainerWeights(this.#handle);
    return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.data]));
  }

  /** Writes the weights as safetensors (PyTorch: `combiner.load_state_dict(load_file(path))`). */
  async save(path: string, options: { metadata?: Record<string, string> } = {}): Promise<void> {
    const t = binding.combinerTrainerWeights(this.#handle);
    const tensors = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, { dtype: 'F32' as const, shape: v.shape, data: v.data }]));
    await writeSafetensors(path, tensors, { metadata: { format: 'pt', producer: 'vlkernels', ...options.metadata } });
  }
}
