// Demo: synthetic "image embeddings" (50,000 x 512 in 8 themes) and 1,000 queries made near known items,
// searched with cosine k = 5 through the async API; prints a few results, the throughput and info().
// Run with `npm run demo` after `npm ci` (which builds the addon and dist/).
import { info, search } from 'vlkernels';
import { makeGaussian } from '../bench/lib/data.mjs';
import { fmt, formatTable } from '../bench/lib/table.mjs';

const N = 50_000;
const D = 512;
const Q = 1_000;
const K = 5;
const THEMES = ['beach', 'forest', 'city at night', 'cat', 'dog', 'mountain', 'food', 'car'];

const started = performance.now();
const gauss = makeGaussian(2024);

// Each theme has a direction; an item is its theme's direction plus its own larger noise, so items of a
// theme are related (cosine ~0.3) but each is distinct. Vectors are left unnormalised: cosine handles scale.
const centres = THEMES.map(() => Float32Array.from({ length: D }, gauss));
const gallery = new Float32Array(N * D);
for (let i = 0; i < N; i++) {
  const c = centres[i % THEMES.length];
  const scale = 0.5 + (i % 7) / 7; // varied norms, as real embeddings have
  for (let j = 0; j < D; j++) gallery[i * D + j] = scale * (0.6 * c[j] + 0.9 * gauss());
}

// Each query is a noisy copy of one gallery item (its "planted" match), like a re-encoded crop of a photo.
const planted = Int32Array.from({ length: Q }, (_, i) => (i * 7919 + 13) % N);
const queries = new Float32Array(Q * D);
for (let i = 0; i < Q; i++) {
  const base = planted[i] * D;
  for (let j = 0; j < D; j++) queries[i * D + j] = gallery[base + j] + 0.5 * gauss();
}
const genMs = performance.now() - started;

const g = { data: gallery, rows: N, cols: D };
const q = { data: queries, rows: Q, cols: D };
await search(q, g, { k: K, metric: 'cosine' }); // warm-up: first-touch page faults, pool start

// Count timer ticks while the search runs: the async API keeps the event loop free.
let ticks = 0;
const timer = setInterval(() => ticks++, 1);
const t0 = performance.now();
const res = await search(q, g, { k: K, metric: 'cosine' });
const ms = performance.now() - t0;
clearInterval(timer);

const show = [0, 1, 2, 3, 4];
console.log(`vlkernels demo: ${fmt(N)} synthetic image embeddings (${D}-d, ${THEMES.length} themes), ` +
  `${fmt(Q)} queries, cosine, k = ${K}\n`);
console.log(formatTable(
  ['query', 'made near', `top ${K}: gallery index (score)`],
  show.map((i) => {
    const row = [];
    for (let r = 0; r < K; r++) row.push(`${res.indices[i * K + r]} (${res.scores[i * K + r].toFixed(3)})`);
    return [`#${i}`, `${planted[i]} ${THEMES[planted[i] % THEMES.length]}`, row.join('  ')];
  }),
  ['r', 'l', 'l'],
));

let found = 0;
let sameTheme = 0;
for (let i = 0; i < Q; i++) {
  if (res.indices[i * K] === planted[i]) found++;
  for (let r = 1; r < K; r++) if (res.indices[i * K + r] % THEMES.length === planted[i] % THEMES.length) sameTheme++;
}
const inf = info();
console.log(`\ntop-1 is the planted item for ${fmt(found)} of ${fmt(Q)} queries; ` +
  `${((100 * sameTheme) / (Q * (K - 1))).toFixed(1)}% of ranks 2-${K} share its theme`);
console.log(`throughput: ${fmt(ms, 1)} ms for ${fmt(Q)} queries = ${fmt((Q / ms) * 1e3)} queries/s, ` +
  `${fmt((2 * Q * N * D) / (ms * 1e6), 1)} GFLOP/s; event loop ran ${ticks} 1 ms timer ticks meanwhile`);
console.log(`info: vlkernels ${inf.version}, ISA ${inf.isa} (available: ${inf.isas.join(', ')}), ` +
  `${inf.threads} threads, CUDA ${inf.cuda.usable ? 'usable' : 'not used'}`);
console.log(`(data generated in ${fmt(genMs / 1e3, 1)} s; total ${fmt((performance.now() - started) / 1e3, 1)} s)`);
