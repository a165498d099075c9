// The block cache (test/memory.test.ts, native/core/common/block_cache): large results come from
// it and return to it when V8 collects them, so a repeated call reuses mapped memory: the second
// call's results are bit-identical to the first's (a recycled block is zeroed before the op runs,
// so nothing of its last user can leak into a result), info().memory counts the reuse,
// releaseMemory() empties the cache, and VLK_CACHE_MB=0 turns caching off (a child process).
import { spawnSync } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gcnBackwardSync, gcnSync, info, relevance, releaseMemory } from './helpers/lib';
import { gaussian } from './helpers/random';

setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

function randn(count: number, seed: number, scale = 1): Float32Array {
  const g = gaussian(seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = g() * scale;
  return out;
}

// n x d gcn inputs whose outputs (n d, d d, n n floats) are all >= 64 KiB: cached sizes.
const n = 160;
const d = 128;
const inputs = {
  adjacency: { data: randn(n * n, 1, 0.1), rows: n, cols: n },
  input: { data: randn(n * d, 2), rows: n, cols: d },
  weight: { data: randn(d * d, 3, 0.1), rows: d, cols: d },
  bias: randn(d, 4, 0.1),
};
const gradOutput = { data: randn(n * d, 5), rows: n, cols: d };

function run() {
  const f = gcnSync(inputs, { slope: 0.2 });
  const g = gcnBackwardSync({ ...inputs, gradOutput, ...f }, { slope: 0.2 });
  return [f.output, f.hidden, g.input, g.weight, g.adjacency].map((a) => Float32Array.from(a));
}

const t = suite('block cache');

t('a repeated call reuses collected blocks and gives bit-identical results', () => {
  releaseMemory();
  const first = run();
  collect();
  collect();
  const before = info().memory;
  assert.ok(before.cachedBytes > 0, `collected results went back to the cache (cachedBytes ${before.cachedBytes})`);
  const second = run();
  const after = info().memory;
  assert.ok(after.hits > before.hits, `hits ${before.hits} -> ${after.hits}`);
  for (let k = 0; k < first.length; k++) {
    assert.equal(Buffer.compare(Buffer.from(first[k].buffer), Buffer.from(second[k].buffer)), 0, `result ${k} differs`);
  }
});

t('a recycled block holds no trace of its last user', async () => {
  releaseMemory();
  // Fill n x n results with large values, collect them, then take the same blocks for a relevance
  // whose every entry is in (0, 1]: any leftover would show.
  const x = { data: randn(n * 64, 7), rows: n, cols: 64 };
  let junk: Float32Array[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await relevance(x, { sigma: 1e-3 });
    r.fill(1e30);
    junk.push(r);
  }
  junk = [];
  collect();
  collect();
  const r = await relevance(x, { sigma: 1 });
  for (let i = 0; i < r.length; i++) {
    if (!(r[i] > 0 && r[i] <= 1)) assert.unreachable(`entry ${i} is ${r[i]}`);
  }
  assert.is(junk.length, 0);
});

t('releaseMemory empties the cache and reports the bytes', () => {
  run();
  collect();
  collect();
  const held = info().memory.cachedBytes;
  assert.ok(held > 0);
  assert.is(releaseMemory(), held);
  assert.is(info().memory.cachedBytes, 0);
  assert.is(info().memory.limitBytes, 256 * 2 ** 20);
});

t('VLK_CACHE_MB=0 disables caching (child process)', () => {
  const script = `
    const v = require(${JSON.stringify(join(__dirname, '..', 'dist', 'cjs', 'index.js'))});
    require('node:v8').setFlagsFromString('--expose-gc');
    const gc = require('node:vm').runInNewContext('gc');
    const x = { data: new Float32Array(300 * 64).map((_, i) => Math.sin(i)), rows: 300, cols: 64 };
    const a = v.relevanceSync(x, { sigma: 1 });
    gc(); gc();
    const b = v.relevanceSync(x, { sigma: 1 });
    let same = a.length === b.length;
    for (let i = 0; i < a.length && same; i++) same = a[i] === b[i];
    console.log(JSON.stringify({ ...v.info().memory, same }));`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, VLK_CACHE_MB: '0' } });
  assert.is(r.status, 0, r.stderr);
  const m = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  assert.is(m.limitBytes, 0);
  assert.is(m.cachedBytes, 0);
  assert.is(m.hits, 0);
  assert.ok(m.misses >= 2);
  assert.ok(m.same);
});

t.run();
