// The `vlk` command line end to end (test/cli.test.ts): spawned `node bin/vlk.mjs` on .npy/.fvecs
// files written here; index build + search against searchSync and a float64 brute force, the table
// shape, eval flickr / ranks on planted sets with known recall, exit codes 0/1/2 with typed errors
// on stderr, --help/--version on every command, --quiet, and progress only on a terminal.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { info, searchSync } from './helpers/lib';
import { repoRoot } from './helpers/paths';
import { gaussian, gaussianMatrix } from './helpers/random';

const bin = join(repoRoot, 'bin', 'vlk.mjs');
const version: string = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version;
const dir = mkdtempSync(join(tmpdir(), 'vlk-cli-'));
const file = (name: string) => join(dir, name);

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function vlk(args: string[], env: Record<string, string> = {}): Run {
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ...env },
  });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function npyBytes(data: Float32Array, rows: number, cols: number): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
  // Pad so the data starts at a multiple of 64, with a trailing newline, as numpy writes it.
  header += ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
  const head = Buffer.alloc(10);
  head[0] = 0x93;
  head.write('NUMPY', 1, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

function fvecsBytes(data: Float32Array, rows: number, cols: number): Buffer {
  const out = Buffer.alloc(rows * (4 + 4 * cols));
  for (let r = 0; r < rows; r++) {
    const at = r * (4 + 4 * cols);
    out.writeInt32LE(cols, at);
    for (let c = 0; c < cols; c++) out.writeFloatLE(data[r * cols + c], at + 4 + 4 * c);
  }
  return out;
}

/** float64 brute force: per query the k best rows (ties to the lower row), as the library orders them. */
function bruteTopK(q: Float32Array, g: Float32Array, rows: number, dim: number, k: number, metric: 'cosine' | 'ip' | 'l2'): number[][] {
  const norms = (m: Float32Array, n: number) =>
    Array.from({ length: n }, (_, i) => Math.sqrt(m.subarray(i * dim, (i + 1) * dim).reduce((s, x) => s + x * x, 0)));
  const qn = norms(q, q.length / dim);
  const gn = norms(g, rows);
  const out: number[][] = [];
  for (let i = 0; i < q.length / dim; i++) {
    const s: number[] = [];
    for (let j = 0; j < rows; j++) {
      let dot = 0;
      let l2 = 0;
      for (let c = 0; c < dim; c++) {
        dot += q[i * dim + c] * g[j * dim + c];
        l2 += (q[i * dim + c] - g[j * dim + c]) ** 2;
      }
      s.push(metric === 'ip' ? dot : metric === 'cosine' ? dot / (qn[i] * gn[j]) : -l2);
    }
    out.push(s.map((v, j) => [v, j]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k).map((p) => p[1]));
  }
  return out;
}

// Fixtures: a 513 x 7 gallery and 9 queries (awkward sizes), as .npy and .fvecs.
const DIM = 7;
const ROWS = 513;
const Q = 9;
const gallery = gaussianMatrix(ROWS, DIM, 101);
const queries = gaussianMatrix(Q, DIM, 202);
writeFileSync(file('g.npy'), npyBytes(gallery, ROWS, DIM));
writeFileSync(file('g.fvecs'), fvecsBytes(gallery, ROWS, DIM));
writeFileSync(file('q.npy'), npyBytes(queries, Q, DIM));
writeFileSync(file('q.fvecs'), fvecsBytes(queries, Q, DIM));

// ---------------------------------------------------------------------------------------------
const Info = suite('vlk info');

Info('--json parses and matches info()', () => {
  const r = vlk(['info', '--json']);
  assert.is(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  const here = info();
  assert.is(j.version, version);
  assert.is(j.isa, here.isa);
  assert.equal(j.isas, here.isas);
  assert.is(j.threads, here.threads);
  assert.is(j.napiVersion, here.napiVersion);
});

Info('pretty output names the version, ISA and threads', () => {
  const r = vlk(['info']);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, `vlkernels ${version}`);
  assert.match(r.stdout, `ISA: ${info().isa}`);
  assert.match(r.stdout, `threads: ${info().threads}`);
});

Info.run();

// ---------------------------------------------------------------------------------------------
const Search = suite('vlk index build + search');

function searchJson(indexFile: string, queriesFile: string, k: number) {
  const r = vlk(['search', indexFile, queriesFile, '-k', String(k), '--json']);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stderr, '', 'no progress or notes on a pipe');
  return JSON.parse(r.stdout);
}

Search('npy, cosine: --json equals searchSync and the float64 brute force', () => {
  const b = vlk(['index', 'build', file('g.npy'), '-o', file('cos.vlk'), '--metric', 'cosine']);
  assert.is(b.status, 0, b.stderr);
  assert.match(b.stdout, `indexed ${ROWS} x ${DIM}`);
  for (const k of [1, 10]) {
    const j = searchJson(file('cos.vlk'), file('q.npy'), k);
    assert.is(j.k, k);
    assert.is(j.metric, 'cosine');
    assert.is(j.results.length, Q);
    const want = searchSync({ data: queries, rows: Q, cols: DIM }, { data: gallery, rows: ROWS, cols: DIM }, { k, metric: 'cosine' });
    const brute = bruteTopK(queries, gallery, ROWS, DIM, k, 'cosine');
    for (let i = 0; i < Q; i++) {
      assert.is(j.results[i].query, i);
      assert.equal(j.results[i].ids, Array.from(want.indices.subarray(i * k, (i + 1) * k)), `query ${i} ids`);
      // JSON carries the float32 scores exactly (a float32 widened to double prints round-trip).
      assert.equal(j.results[i].scores.map(Math.fround), Array.from(want.scores.subarray(i * k, (i + 1) * k)), `query ${i} scores`);
      assert.equal(j.results[i].ids, brute[i], `query ${i} vs float64`);
    }
  }
});

Search('fvecs, l2, i8 storage, --ids: the given ids, same order as searchSync', () => {
  const ids = Array.from({ length: ROWS }, (_, i) => 1_000_000 + 3 * i);
  writeFileSync(file('ids.txt'), `${ids.join('\n')}\n`);
  const b = vlk(['index', 'build', file('g.fvecs'), '-o', file('l2.vlk'), '--metric', 'l2', '--precision', 'i8', '--ids', file('ids.txt'), '--quiet']);
  assert.is(b.status, 0, b.stderr);
  const k = 5;
  const j = searchJson(file('l2.vlk'), file('q.fvecs'), k);
  const want = searchSync({ data: queries, rows: Q, cols: DIM }, { data: gallery, rows: ROWS, cols: DIM }, { k, metric: 'l2' });
  for (let i = 0; i < Q; i++) {
    assert.equal(j.results[i].ids, Array.from(want.indices.subarray(i * k, (i + 1) * k), (r) => ids[r]));
    assert.equal(j.results[i].scores.map(Math.fround), Array.from(want.scores.subarray(i * k, (i + 1) * k)));
  }
});

Search('k above the index size: each query lists the whole index once', () => {
  writeFileSync(file('small.npy'), npyBytes(gallery.subarray(0, 3 * DIM), 3, DIM));
  assert.is(vlk(['index', 'build', file('small.npy'), '-o', file('small.vlk'), '--metric', 'ip', '-q']).status, 0);
  const j = searchJson(file('small.vlk'), file('q.npy'), 10);
  for (const res of j.results) assert.equal([...res.ids].sort(), [0, 1, 2]);
});

Search('--table (default): a header, a rule, then query, rank, id, score per result', () => {
  const k = 4;
  for (const extra of [[], ['--table']]) {
    const r = vlk(['search', file('cos.vlk'), file('q.npy'), '-k', String(k), ...extra]);
    assert.is(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines[0].trim().split(/\s+/), ['query', 'rank', 'id', 'score']);
    assert.match(lines[1], /^-+( +-+){3}$/);
    assert.is(lines.length, 2 + Q * k);
    const want = searchSync({ data: queries, rows: Q, cols: DIM }, { data: gallery, rows: ROWS, cols: DIM }, { k, metric: 'cosine' });
    lines.slice(2).forEach((line, n) => {
      const [q, rank, id, score] = line.trim().split(/\s+/);
      assert.is(Number(q), Math.floor(n / k));
      assert.is(Number(rank), (n % k) + 1);
      assert.is(Number(id), want.indices[n]);
      assert.ok(Math.abs(Number(score) - want.scores[n]) <= 5e-7, `score ${score} vs ${want.scores[n]}`);
    });
  }
});

Search('--metric that differs from the index: ERR_VLK_INVALID_ARG, exit 1', () => {
  const r = vlk(['search', file('cos.vlk'), file('q.npy'), '--metric', 'l2']);
  assert.is(r.status, 1);
  assert.match(r.stderr, /^ERR_VLK_INVALID_ARG: --metric: l2, but .* was built for cosine\n$/);
});

Search('queries of another dim: ERR_VLK_DIM_MISMATCH, exit 1', () => {
  writeFileSync(file('q5.npy'), npyBytes(gaussianMatrix(2, 5, 3), 2, 5));
  const r = vlk(['search', file('cos.vlk'), file('q5.npy')]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /^ERR_VLK_DIM_MISMATCH: .*dim 5.*dim 7/);
});

Search.run();

// ---------------------------------------------------------------------------------------------
const Eval = suite('vlk eval');

Eval('flickr: planted antipodal captions give the known recall, both directions', () => {
  // 40 images, 5 captions each. Captions of images 0, 4, 8, ... point away from their image
  // (cosine ~ -1: last in both directions), every other caption is a near copy of its image (first):
  // R@1 = R@5 = R@10 = 30 / 40 = 75% both ways, medr 1, rSum 450.
  const n = 40;
  const d = 32;
  const per = 5;
  const images = gaussianMatrix(n, d, 7);
  const g = gaussian(8);
  const captions = new Float32Array(n * per * d);
  for (let i = 0; i < n; i++) {
    const sign = i % 4 === 0 ? -1 : 1;
    for (let c = 0; c < per; c++) for (let x = 0; x < d; x++) captions[(i * per + c) * d + x] = sign * images[i * d + x] + 0.01 * g();
  }
  writeFileSync(file('img.npy'), npyBytes(images, n, d));
  writeFileSync(file('cap.fvecs'), fvecsBytes(captions, n * per, d));
  const r = vlk(['eval', 'flickr', '--images', file('img.npy'), '--captions', file('cap.fvecs'), '--json']);
  assert.is(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  for (const dir of ['i2t', 't2i']) {
    for (const k of ['r1', 'r5', 'r10']) assert.is(j[dir][k], 75, `${dir} ${k}`);
    assert.is(j[dir].medr, 1);
  }
  assert.is(j.rsum, 450);
  assert.is(j.images, n);
  assert.is(j.captions, n * per);

  const pretty = vlk(['eval', 'flickr', '--images', file('img.npy'), '--captions', file('cap.fvecs')]);
  assert.is(pretty.status, 0, pretty.stderr);
  assert.match(pretty.stdout, /image->text +75\.0 +75\.0 +75\.0 +1\n/);
  assert.match(pretty.stdout, /text->image +75\.0 +75\.0 +75\.0 +1\n/);
  assert.match(pretty.stdout, 'rSum 450.0');
  // Another caption count per image than the file holds: the library's shape error, exit 1.
  const bad = vlk(['eval', 'flickr', '--images', file('img.npy'), '--captions', file('cap.fvecs'), '--per-image', '3']);
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /^ERR_VLK_SHAPE: captions: 200 rows, expected/);
});

Eval('ranks: recall@K of planted targets', () => {
  // Query q is near gallery row 3q + 1 for q < 6 (hits); the last 2 queries list a far row as target.
  const d = 16;
  const rows = 30;
  const gal = gaussianMatrix(rows, d, 11);
  const g = gaussian(12);
  const nq = 8;
  const qs = new Float32Array(nq * d);
  for (let q = 0; q < nq; q++) for (let x = 0; x < d; x++) qs[q * d + x] = gal[(3 * q + 1) * d + x] + 0.01 * g();
  const targets = Array.from({ length: nq }, (_, q) => (q < 6 ? [3 * q + 1] : [2, 3 * q + 2]));
  writeFileSync(file('rq.npy'), npyBytes(qs, nq, d));
  writeFileSync(file('rg.npy'), npyBytes(gal, rows, d));
  writeFileSync(file('targets.txt'), targets.map((t) => t.join(' ')).join('\n'));
  const r = vlk(['eval', 'ranks', '--queries', file('rq.npy'), '--gallery', file('rg.npy'), '--targets', file('targets.txt'), '--ks', '1,30', '--json']);
  assert.is(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.is(j.recall.r1, 75);
  assert.is(j.recall.r30, 100);
  const table = vlk(['eval', 'ranks', '--queries', file('rq.npy'), '--gallery', file('rg.npy'), '--targets', file('targets.txt')]);
  assert.is(table.status, 0, table.stderr);
  assert.match(table.stdout, /^ +1 +75\.00$/m);
});

Eval.run();

// ---------------------------------------------------------------------------------------------
const Codes = suite('vlk exit codes');

function usage(args: string[], pattern: RegExp) {
  const r = vlk(args);
  assert.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
}

Codes('2 for bad usage', () => {
  usage(['frobnicate'], /unknown command 'frobnicate'/);
  usage([], /Usage: vlk/);
  usage(['search', file('cos.vlk')], /missing required argument 'queries'/);
  usage(['index', 'build', file('g.npy')], /required option '-o, --output <index>' not specified/);
  usage(['search', file('cos.vlk'), file('q.npy'), '-k', 'abc'], /-k must be an integer >= 1, got "abc"/);
  usage(['search', file('cos.vlk'), file('q.npy'), '-k', '0'], /-k must be an integer >= 1, got "0"/);
  usage(['search', file('cos.vlk'), file('q.npy'), '--json', '--table'], /cannot be used with option '--table'/);
  usage(['index', 'build', file('g.npy'), '-o', file('x.vlk'), '--metric', 'dot'], /Allowed choices are cosine, ip, l2/);
  usage(['eval', 'flickr', '--images', file('img.npy')], /required option '--captions <file>'/);
  usage(['info', '--bogus'], /unknown option '--bogus'/);
  usage(['bench', 'no_such_bench'], /unknown benchmark "no_such_bench"/);
});

function failure(args: string[], pattern: RegExp) {
  const r = vlk(args);
  assert.is(r.status, 1, `${args.join(' ')}: ${r.stdout} ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  assert.is(r.stderr.trimEnd().split('\n').length, 1, 'one line');
}

Codes('1 with the typed code for a malformed or missing file', () => {
  const npy = readFileSync(file('g.npy'));
  writeFileSync(file('trunc.npy'), npy.subarray(0, npy.length - 6));
  failure(['index', 'build', file('trunc.npy'), '-o', file('x.vlk')], /^ERR_VLK_CORRUPT: .*trunc\.npy: data: .*needs \d+ bytes after the \d+-byte header/);
  writeFileSync(file('head.npy'), npy.subarray(0, 40));
  failure(['index', 'build', file('head.npy'), '-o', file('x.vlk')], /^ERR_VLK_CORRUPT: .*head\.npy: header/);
  writeFileSync(file('magic.npy'), Buffer.from('not a numpy file at all'));
  failure(['search', file('cos.vlk'), file('magic.npy')], /^ERR_VLK_CORRUPT: .*magic\.npy: magic/);
  const fv = Buffer.from(readFileSync(file('g.fvecs')));
  fv.writeInt32LE(DIM + 1, 3 * (4 + 4 * DIM)); // record 3 claims another dim, the size still fits
  writeFileSync(file('bad.fvecs'), fv);
  failure(['index', 'build', file('bad.fvecs'), '-o', file('x.vlk')], /^ERR_VLK_CORRUPT: .*bad\.fvecs: record 3 dim: 8, but record 0 has dim 7/);
  writeFileSync(file('short.fvecs'), readFileSync(file('g.fvecs')).subarray(0, 100));
  failure(['index', 'build', file('short.fvecs'), '-o', file('x.vlk')], /^ERR_VLK_CORRUPT: .*short\.fvecs: .*100 bytes|^ERR_VLK_CORRUPT: .*short\.fvecs: record \d+: trailing partial record/);
  failure(['index', 'build', file('missing.npy'), '-o', file('x.vlk')], /^ERR_VLK_IO: .*missing\.npy: ENOENT/);
  failure(['search', file('missing.vlk'), file('q.npy')], /^ERR_VLK_IO: .*missing\.vlk/);
  // The other readers, one malformed file each: bvecs, raw float32, safetensors.
  writeFileSync(file('bad.bvecs'), Buffer.from([4, 0, 0, 0, 1, 2, 3, 4, 4, 0, 0, 0, 1, 2]));
  failure(['index', 'build', file('bad.bvecs'), '-o', file('x.vlk')], /^ERR_VLK_CORRUPT: .*bad\.bvecs: record 1: trailing partial record/);
  writeFileSync(file('bad.f32'), Buffer.alloc(30));
  failure(['index', 'build', file('bad.f32'), '--dim', '4', '-o', file('x.vlk')], /^ERR_VLK_SHAPE: .*bad\.f32: size: 30 bytes is not a multiple of cols x 4 = 16/);
  writeFileSync(file('bad.safetensors'), Buffer.from([200, 0, 0, 0, 0, 0, 0, 0, 123]));
  failure(['index', 'build', file('bad.safetensors'), '-o', file('x.vlk')], /^ERR_VLK_CORRUPT: .*bad\.safetensors.*header length 200/);
  writeFileSync(file('notindex.vlk'), Buffer.alloc(200, 7));
  failure(['search', file('notindex.vlk'), file('q.npy')], /^ERR_VLK_CORRUPT: /);
  writeFileSync(file('ids-short.txt'), '1\n2\n');
  failure(['index', 'build', file('g.npy'), '-o', file('x.vlk'), '--ids', file('ids-short.txt')], /^ERR_VLK_SHAPE: .*2 ids, the vectors have 513 rows/);
  failure(['index', 'build', file('g.npy'), '-o', join(dir, 'no', 'such', 'folder', 'x.vlk')], /^ERR_VLK_IO: /);
  assert.not.ok(existsSync(file('x.vlk')), 'a failed build writes no index');
});

Codes('--help and --version on every command, exit 0', () => {
  for (const path of [[], ['info'], ['index'], ['index', 'build'], ['search'], ['eval'], ['eval', 'flickr'], ['eval', 'ranks'], ['bench']]) {
    const h = vlk([...path, '--help']);
    assert.is(h.status, 0, `${path.join(' ')} --help: ${h.stderr}`);
    assert.match(h.stdout, `Usage: vlk${path.map((p) => ` ${p}`).join('')} `);
    const v = vlk([...path, '--version']);
    assert.is(v.status, 0, `${path.join(' ')} --version: ${v.stderr}`);
    assert.is(v.stdout.trim(), version);
  }
});

Codes('bench: passes arguments after -- to the benchmark', () => {
  const r = vlk(['bench', 'search', '--', '--help']);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /usage: npm run bench -- search/);
});

Codes.run();

// ---------------------------------------------------------------------------------------------
const Progress = suite('vlk progress');

Progress('--quiet: stdout and stderr stay empty', () => {
  const r = vlk(['index', 'build', file('g.npy'), '-o', file('quiet.vlk'), '--quiet'], { VLK_PROGRESS_DELAY_MS: '0' });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, '');
  assert.is(r.stderr, '');
  assert.ok(existsSync(file('quiet.vlk')));
});

Progress('stderr not a terminal: no progress, even past the delay', () => {
  const r = vlk(['index', 'build', file('g.npy'), '-o', file('pipe.vlk')], { VLK_PROGRESS_DELAY_MS: '0' });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stderr, '');
  const s = vlk(['search', file('pipe.vlk'), file('q.npy'), '--json'], { VLK_PROGRESS_DELAY_MS: '0' });
  assert.is(s.stderr, '');
});

Progress('stderr a terminal (script(1) pty): a bar with throughput and ETA; --quiet still silences it', () => {
  if (!existsSync('/usr/bin/script')) {
    console.log('  (skipped: /usr/bin/script is not installed)');
    return;
  }
  // Enough rows for several batches (the bar advances between them).
  const rows = 40_000;
  const d = 256;
  writeFileSync(file('wide.npy'), npyBytes(gaussianMatrix(rows, d, 5), rows, d));
  const cmd = (extra: string) => `'${process.execPath}' '${bin}' index build '${file('wide.npy')}' -o '${file('wide.vlk')}' ${extra}`;
  const pty = (extra: string) =>
    spawnSync('/usr/bin/script', ['-qec', cmd(extra), '/dev/null'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, VLK_PROGRESS_DELAY_MS: '0' },
    });
  const shown = pty('');
  if (shown.status !== 0 && /pseudo-terminal|openpty|ptmx/i.test(`${shown.stdout}${shown.stderr}`)) {
    console.log(`  (skipped: script(1) cannot open a pty here: ${shown.stdout.trim()})`);
    return;
  }
  assert.is(shown.status, 0, shown.stdout);
  assert.match(shown.stdout, /adding \|.*\| +\d+% \d+\/40000 vectors \| [\d,]+ vectors\/s \| ETA /);
  const quiet = pty('--quiet');
  assert.is(quiet.status, 0, quiet.stdout);
  assert.not.match(quiet.stdout, /adding|ETA/);
});

Progress.after(() => rmSync(dir, { recursive: true, force: true }));
Progress.run();
