// hnswlib-node BruteforceSearch: exact inner-product search, one query per searchKnn call, one thread.
// Bench peer. Its API takes number[] only, so points and queries are converted before timing. A full W1 run
// takes minutes, so a subset of queries is timed and the time is extrapolated to Q (reported as such).
import { createRequire } from 'node:module';
import { emit, latency, loadInputs, packageVersion, parsePeerArgs, skip, timeBest } from '../lib/peer.mjs';

const NAME = 'hnswlib';
const require = createRequire(import.meta.url);

let hnswlib;
try {
  hnswlib = require('hnswlib-node');
} catch (e) {
  skip(NAME, `npm package hnswlib-node does not load (${e.message.split('\n')[0]}); npm install -D hnswlib-node`);
}
const version = packageVersion(require, 'hnswlib-node');

const args = parsePeerArgs({ subset: { type: 'string', default: '100' } });
const { g, q } = loadInputs(args);
const D = g.cols;
const index = new hnswlib.BruteforceSearch('ip', D);
index.initIndex(g.rows);
for (let i = 0; i < g.rows; i++) index.addPoint(Array.from(g.data.subarray(i * D, (i + 1) * D)), i);

const subset = Math.min(Number(args.subset), q.rows);
const queries = Array.from({ length: subset }, (_, i) => Array.from(q.data.subarray(i * D, (i + 1) * D)));
const runs = [];
let check;
for (const k of args.ks) {
  const { times, out } = await timeBest(() => queries.map((row) => index.searchKnn(row, k)), args.repeats);
  const scale = q.rows / subset;
  const scaled = times.map((t) => t * scale);
  runs.push({ k, q: q.rows, timedQueries: subset, extrapolated: subset < q.rows, timesMs: scaled, bestMs: Math.min(...scaled) });
  check ??= {
    k,
    indices: out.slice(0, args.check).map((r) => {
      // searchKnn's order is not documented as best first; sort by distance (1 - dot) ascending.
      const order = r.neighbors.map((n, j) => [r.distances[j], n]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      return order.map((p) => p[1]);
    }),
  };
}
const lat = await latency(() => index.searchKnn(queries[0], 10), args.latencyRuns, 10);
emit({
  name: NAME,
  system: `hnswlib-node ${version} BruteforceSearch`,
  versions: { 'hnswlib-node': version },
  threads: 1,
  runs,
  latency: lat,
  check,
});
