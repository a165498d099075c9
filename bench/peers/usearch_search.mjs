// usearch exactSearch: brute-force inner-product top-k over all threads (npm usearch, its own SIMD kernels).
// Bench peer. Gallery N x D, queries Q x D (float32) -> keys Q x k; 'ip' distance is 1 - dot, ascending.
import { createRequire } from 'node:module';
import { emit, latency, loadInputs, packageVersion, parsePeerArgs, skip, timeBest } from '../lib/peer.mjs';

const NAME = 'usearch';
const require = createRequire(import.meta.url);

let usearch;
try {
  usearch = require('usearch');
} catch (e) {
  skip(NAME, `npm package usearch does not load (${e.message.split('\n')[0]}); npm install -D usearch`);
}
const version = packageVersion(require, 'usearch');

const args = parsePeerArgs();
const { g, q } = loadInputs(args);
const D = g.cols;
const runs = [];
let check;
for (const k of args.ks) {
  const { times, out } = await timeBest(() => usearch.exactSearch(g.data, q.data, D, k, 'ip', 0), args.repeats);
  runs.push({ k, q: q.rows, timesMs: times, bestMs: Math.min(...times) });
  check ??= {
    k,
    indices: Array.from({ length: Math.min(args.check, q.rows) }, (_, i) =>
      Array.from(out.keys.subarray(i * k, (i + 1) * k), Number)),
  };
}
const q1 = q.data.subarray(0, D);
const lat = await latency(() => usearch.exactSearch(g.data, q1, D, 10, 'ip', 0), args.latencyRuns, 10);
emit({
  name: NAME,
  system: `usearch ${version} exactSearch`,
  versions: { usearch: version },
  threads: 'all (threads = 0)',
  runs,
  latency: lat,
  check,
});
