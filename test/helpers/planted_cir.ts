// A synthetic composed-retrieval task with planted structure (test/helpers), fixed seed: an image
// is the sum of one attribute embedding per slot (e.g. colour, shape, material) plus noise; a
// modification text names a slot and its new value ("make the colour red": its own text embedding,
// unrelated to the image's); the target is the reference with that slot's value replaced. The
// gallery holds one fresh image per attribute combination. Held-out queries use reference
// combinations never seen in training.
import { gaussian, rng } from './random';

export interface PlantedTask {
  dim: number;
  train: { image: Float32Array; text: Float32Array; target: Float32Array; reverse: Float32Array; n: number };
  test: { image: Float32Array; text: Float32Array; target: Int32Array; reference: Int32Array; n: number };
  gallery: Float32Array; // one row per combination
  combos: number;
}

export function plantedTask(
  opts: { dim?: number; slots?: number; values?: number; train?: number; test?: number; seed?: number; noise?: number } = {},
): PlantedTask {
  const d = opts.dim ?? 32;
  const slots = opts.slots ?? 3;
  const values = opts.values ?? 6;
  const nTrain = opts.train ?? 3000;
  const nTest = opts.test ?? 300;
  const g = gaussian(opts.seed ?? 20261125);
  const noise = opts.noise ?? 0.05;
  const u = rng((opts.seed ?? 20261125) + 1);
  const vec = (scale: number) => Float32Array.from({ length: d }, () => g() * scale);
  const attr = Array.from({ length: slots }, () => Array.from({ length: values }, () => vec(1 / Math.sqrt(d))));
  const words = Array.from({ length: slots }, () => Array.from({ length: values }, () => vec(1 / Math.sqrt(d))));
  const combos = values ** slots;
  const decode = (c: number) => Array.from({ length: slots }, (_, s) => Math.floor(c / values ** s) % values);
  const encode = (v: number[]) => v.reduce((acc, x, s) => acc + x * values ** s, 0);
  const image = (c: number, out: Float32Array, at: number) => {
    const v = decode(c);
    for (let j = 0; j < d; j++) {
      let x = noise * g() / Math.sqrt(d);
      for (let s = 0; s < slots; s++) x += attr[s][v[s]][j];
      out[at + j] = x;
    }
  };
  // Held-out reference combinations: every fifth.
  const heldOut = (c: number) => c % 5 === 0;
  const triplet = (wantHeldOut: boolean, im: Float32Array, tx: Float32Array, at: number, rev?: Float32Array) => {
    let c = 0;
    do c = Math.floor(u() * combos);
    while (heldOut(c) !== wantHeldOut);
    const s = Math.floor(u() * slots);
    const v = decode(c);
    let nv = v[s];
    while (nv === v[s]) nv = Math.floor(u() * values);
    image(c, im, at);
    for (let j = 0; j < d; j++) tx[at + j] = words[s][nv][j] + (noise * g()) / Math.sqrt(d);
    // The reverse modification ("make it <old value> again") leads from the target back.
    if (rev) for (let j = 0; j < d; j++) rev[at + j] = words[s][v[s]][j] + (noise * g()) / Math.sqrt(d);
    const t = v.slice();
    t[s] = nv;
    return { reference: c, target: encode(t) };
  };
  const train = {
    image: new Float32Array(nTrain * d),
    text: new Float32Array(nTrain * d),
    target: new Float32Array(nTrain * d),
    reverse: new Float32Array(nTrain * d),
    n: nTrain,
  };
  for (let i = 0; i < nTrain; i++) {
    const { target } = triplet(false, train.image, train.text, i * d, train.reverse);
    image(target, train.target, i * d);
  }
  const test = { image: new Float32Array(nTest * d), text: new Float32Array(nTest * d), target: new Int32Array(nTest), reference: new Int32Array(nTest), n: nTest };
  for (let i = 0; i < nTest; i++) {
    const r = triplet(true, test.image, test.text, i * d);
    test.target[i] = r.target;
    test.reference[i] = r.reference;
  }
  const gallery = new Float32Array(combos * d);
  for (let c = 0; c < combos; c++) image(c, gallery, c * d);
  return { dim: d, train, test, gallery, combos };
}
