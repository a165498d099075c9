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
import { compose } from './compose';
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
  /**
   * Train PTHA's two hops with combiner heads (seed 001, the library's adaptation for one CLIP
   * vector per item): hop 1 p = C1(mod, ref) is pulled towards C1(reverse mod, target) (MSE, no
   * gradient to that side), hop 2 q = C2(mod, p) is contrasted with the targets. Needs
   * `reverse` texts in the data; queries are then C2(mod, C1(mod, ref)) ({@link CombinerTrainer.compose}).
   */
  twoHop?: boolean;
  /** Weight of the hop-1 alignment term (default 0.4, as the paper's code). */
  alignWeight?: number;
}

/** Training triplets, B x D each (Float32Array of B * dim values or a matrix view). */
export interface Triplets {
  image: MatrixInput;
  text: MatrixInput;
  target: MatrixInput;
  /** Reverse modification texts (target -> reference); needed with `twoHop`. */
  reverse?: MatrixInput;
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

function positive(v: unknown, name: string, fallback: number, integer = false, max = Infinity): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.${name}: ${describe(v)} is not a ${integer ? 'positive integer' : 'number > 0'}`);
  }
  if (v > max) throw new VlkError('ERR_VLK_INVALID_ARG', `options.${name}: ${v} is above ${max}`);
  return v;
}

// fit's epochs, as kmeans's iterations: a larger count is a loop that never ends in practice.
const MAX_EPOCHS = 1_000_000;

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
  readonly twoHop: boolean;
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
        twoHop: options.twoHop === true,
        opts: {
          ...(options.twoHop === true ? { alignWeight: options.alignWeight ?? 0.4 } : {}),
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
    this.twoHop = parsed.twoHop;
    try {
      this.#handle = this.twoHop
        ? binding.twoHopTrainerCreate(this.dim, this.projection, this.hidden, this.#seed)
        : binding.combinerTrainerCreate(this.dim, this.projection, this.hidden, this.#seed);
    } catch (err) {
      throw fromNative(err, CombinerTrainer);
    }
  }

  /**
   * Trains for `epochs` passes (an integer in 1..1e6; default 1) over the triplets (each a seeded
   * shuffle cut into batches; a last batch of fewer than 2 is dropped). Resolves with the mean loss
   * of each epoch.
   */
  async fit(data: Triplets, options: { epochs?: number; onProgress?: (p: TrainProgress) => void; signal?: AbortSignal } = {}): Promise<number[]> {
    const api = CombinerTrainer.prototype.fit;
    const { image, text, target, reverse, n, epochs, signal } = atApi(() => {
      if (!isRecord(data)) throw new VlkError('ERR_VLK_TYPE', `data: expected { image, text, target }, got ${describe(data)}`);
      const m = (v: unknown, name: string) => shapeMatrix(readMatrix(v, name), name, this.dim);
      const image = m(data.image, 'image');
      const text = m(data.text, 'text');
      const target = m(data.target, 'target');
      if (text.rows !== image.rows || target.rows !== image.rows) {
        throw new VlkError('ERR_VLK_SHAPE', `image, text and target have ${image.rows}, ${text.rows} and ${target.rows} rows (they must be equal)`);
      }
      if (this.twoHop && data.reverse === undefined) {
        throw new VlkError('ERR_VLK_INVALID_ARG', 'data.reverse: two-hop training needs the reverse modification texts');
      }
      const reverse = this.twoHop ? m(data.reverse, 'reverse') : undefined;
      if (reverse !== undefined && reverse.rows !== image.rows) {
        throw new VlkError('ERR_VLK_SHAPE', `reverse has ${reverse.rows} rows, image has ${image.rows}`);
      }
      return {
        image,
        text,
        target,
        reverse,
        n: image.rows,
        epochs: positive(options.epochs, 'epochs', 1, true, MAX_EPOCHS),
        signal: readSignal(options.signal, 'options.signal'),
      };
    }, api);
    const d = this.dim;
    const b = Math.min(this.#batch, n);
    const losses: number[] = [];
    const srcs = reverse === undefined ? [image, text, target] : [image, text, target, reverse];
    const bufs = srcs.map(() => new Float32Array(b * d));
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
          for (let t = 0; t < srcs.length; t++) {
            const src = srcs[t];
            const off = row * src.cols;
            bufs[t].set(src.data.subarray(off, off + d), r * d);
          }
        }
        const loss = await runCancellable(signal, api, async (token) =>
          this.twoHop
            ? (await binding.twoHopTrainerStepAsync(this.#handle, bufs[0], bufs[1], bufs[2], bufs[3], this.#opts, token)).loss
            : binding.combinerTrainerStepAsync(this.#handle, bufs[0], bufs[1], bufs[2], this.#opts, token),
        );
        sum += loss;
        options.onProgress?.({ epoch: e, step: s, steps, loss });
      }
      losses.push(sum / Math.max(steps, 1));
    }
    return losses;
  }

  // Each head's tensors: one (plain) or two (two-hop: hop 1, hop 2).
  #tensors(): Record<string, { shape: number[]; data: Float32Array }>[] {
    if (!this.twoHop) return [binding.combinerTrainerWeights(this.#handle)];
    const w = binding.twoHopTrainerWeights(this.#handle);
    return [w.hop1, w.hop2];
  }

  /**
   * The current weights of each head, named as the PyTorch combiner's (copies): one head, or
   * [hop 1, hop 2] with `twoHop`.
   */
  heads(): Record<string, Float32Array>[] {
    return this.#tensors().map((t) => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.data])));
  }

  /** The (only) head's weights; with `twoHop`, hop 2's (use {@link CombinerTrainer.compose} or heads()). */
  weights(): Record<string, Float32Array> {
    const h = this.heads();
    return h[h.length - 1];
  }

  /** Composed queries with the trained head(s): C(mod, ref), or C2(mod, C1(mod, ref)). */
  async compose(image: MatrixInput, text: MatrixInput): Promise<Float32Array> {
    const heads = this.heads();
    let q = await compose(image, text, { weights: heads[0], dim: this.dim });
    if (heads.length > 1) q = await compose(q, text, { weights: heads[1], dim: this.dim });
    return q;
  }

  /**
   * Writes the weights as safetensors (PyTorch: `combiner.load_state_dict(load_file(path))`); two
   * heads are prefixed `hop1.` and `hop2.`.
   */
  async save(path: string, options: { metadata?: Record<string, string> } = {}): Promise<void> {
    const heads = this.#tensors();
    const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    heads.forEach((t, i) => {
      for (const [k, v] of Object.entries(t)) tensors[heads.length > 1 ? `hop${i + 1}.${k}` : k] = { dtype: 'F32', shape: v.shape, data: v.data };
    });
    await writeSafetensors(path, tensors, { metadata: { format: 'pt', producer: 'vlkernels', ...options.metadata } });
  }
}
