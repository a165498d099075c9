// The demo (test/demo.test.ts): `node scripts/demo.mjs --quick` exits 0 and prints the planted-target
// recall of plain and composed search (composed must beat the image alone) and its agreement with the
// plain-JS brute force; `--data` on the real Flickr30K set prints the recall its README states.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { dataRoot, repoRoot } from './helpers/paths';

const demo = join(repoRoot, 'scripts', 'demo.mjs');
const run = (args: string[]) => spawnSync(process.execPath, [demo, ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
const num = '([\\d.]+)';

const Demo = suite('demo');

Demo('--quick: exit 0, the recall line, composed above plain, full agreement with JS', () => {
  const r = run(['--quick']);
  assert.is(r.status, 0, r.stderr);
  const m = new RegExp(`recall@1/5/10 of the planted target: plain \\(image only\\) ${num} / ${num} / ${num}, composed \\(image \\+ text\\) ${num} / ${num} / ${num}`).exec(r.stdout);
  assert.ok(m, r.stdout);
  const [p1, , , c1, c5] = m.slice(1).map(Number);
  assert.ok(c1 >= 90, `composed R@1 ${c1}`);
  assert.ok(c5 >= c1);
  assert.ok(p1 < 50, `plain R@1 ${p1}: the reference image alone should not find the other colour`);
  assert.match(r.stdout, /results agree with the JS brute force: plain 100\/100, composed 100\/100 queries/);
  assert.match(r.stdout, /plain search [\d.]+ s vs JS brute force [\d.]+ s/);
});

Demo('--data on Flickr30K CLIP ViT-L/14 1k: the README recall', () => {
  const folder = join(dataRoot, 'flickr30k-clip-vitl14-1k');
  if (!existsSync(folder)) {
    console.log(`  (skipped: ${folder} is absent)`);
    return;
  }
  const r = run(['--data', folder]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, 'image->text R@1 74.7, R@5 94.0, R@10 97.0; text->image R@1 71.7, R@5 92.0, R@10 95.4; rSum 524.8');
  assert.match(r.stdout, /agree 1000\/1000 queries/);
});

Demo('--data on a folder without embeddings: exit 1 and says which files it looks for', () => {
  const r = run(['--data', repoRoot]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /holds none of the known image\/caption file pairs/);
});

Demo.run();
