#!/usr/bin/env node
// The `vlk` command line (bin): info, index build, search, eval (flickr, ranks) and bench over the
// built package (dist/cjs). Vector files are N x D float32 matrices read by lib/vectors_io.
// Exit codes: 0 ok, 1 failure (a VlkError printed as `code: message`), 2 bad usage.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';

const require = createRequire(import.meta.url);
const root = dirname(dirname(fileURLToPath(import.meta.url)));
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const benchDir = join(root, 'bench');
const BENCH_SUFFIX = '.bench.mjs';

// The library is loaded on first use, so --help and --version work even where the addon cannot load.
let lib;
const vlk = () => (lib ??= require('../dist/cjs/index.js'));
const readVectors = (path, opts) => require('../dist/cjs/vectors_io.js').readVectors(path, vectorOptions(opts));

/** Vector-file options shared by every command that reads vectors, passed to readVectors as given. */
function vectorOptions(opts) {
  const out = {};
  if (opts.format !== undefined) out.format = opts.format;
  if (opts.dim !== undefined) out.cols = opts.dim;
  if (opts.tensor !== undefined) out.tensor = opts.tensor;
  return out;
}

function positiveInt(name) {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
      throw new InvalidArgumentError(`${name} must be an integer >= 1, got "${value}"`);
    }
    return Number(value);
  };
}

function kList(value) {
  const ks = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (ks.length === 0) throw new InvalidArgumentError(`expected integers >= 1 separated by commas, got "${value}"`);
  return ks.map((s) => positiveInt('each K')(s));
}

const metricOption = (fallback) => {
  const o = new Option('--metric <metric>', 'similarity: cosine, ip (inner product) or l2 (squared distance)').choices(['cosine', 'ip', 'l2']);
  return fallback === undefined ? o : o.default(fallback);
};

function addVectorFileOptions(cmd) {
  return cmd
    .option('--format <format>', 'vector file format when the extension does not say (npy, fvecs, ...)')
    .option('--dim <n>', 'row length, for formats without a shape in the file', positiveInt('--dim'))
    .option('--tensor <name>', 'tensor name, for files that hold several');
}

// ---------------------------------------------------------------------------------------------
// Progress: on stderr, only when stderr is a terminal, not --quiet, and the work has run longer
// than VLK_PROGRESS_DELAY_MS (default 1000 ms; short jobs should not flash a bar).
const progressDelayMs = Number(process.env.VLK_PROGRESS_DELAY_MS ?? 1000);

function progress(label, total, unit, quiet) {
  const enabled = !quiet && process.stderr.isTTY === true && total > 0;
  const start = performance.now();
  let bar = null;
  const payload = (done) => {
    const s = (performance.now() - start) / 1e3;
    return { label, unit, rate: s > 0 ? Math.round(done / s).toLocaleString('en-US') : '-' };
  };
  return {
    update(done) {
      if (!enabled) return;
      if (bar === null) {
        if (performance.now() - start < progressDelayMs || done >= total) return;
        bar = new cliProgress.SingleBar(
          {
            stream: process.stderr,
            format: '{label} |{bar}| {percentage}% {value}/{total} {unit} | {rate} {unit}/s | ETA {eta_formatted}',
            hideCursor: true,
            clearOnComplete: true,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, done, payload(done));
      } else {
        bar.update(done, payload(done));
      }
    },
    stop() {
      if (bar !== null) bar.stop();
    },
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

// ---------------------------------------------------------------------------------------------
// Files of ids and targets: plain text, one line per vector or query.

function readLines(path) {
  let text;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new (vlk().VlkError)('ERR_VLK_IO', `${path}: cannot read (${err.code ?? err.message})`, { cause: err });
  }
  const lines = text.split(/\r?\n/);
  if (lines.length > 0 && lines[lines.length - 1].trim() === '') lines.pop();
  return lines;
}

/** One non-negative integer id per line; BigInt64Array when one is above 2^53 - 1. */
function readIds(path, rows) {
  const { VlkError } = vlk();
  const lines = readLines(path);
  if (lines.length !== rows) throw new VlkError('ERR_VLK_SHAPE', `${path}: ${lines.length} ids, the vectors have ${rows} rows`);
  const big = [];
  for (let i = 0; i < lines.length; i++) {
    const s = lines[i].trim();
    if (!/^\d+$/.test(s)) throw new VlkError('ERR_VLK_CORRUPT', `${path}: line ${i + 1}: "${s}" is not a non-negative integer id`);
    big.push(BigInt(s));
  }
  if (big.every((b) => b <= BigInt(Number.MAX_SAFE_INTEGER))) return Float64Array.from(big, Number);
  if (big.some((b) => b >= 2n ** 63n)) throw new VlkError('ERR_VLK_CORRUPT', `${path}: an id is above 2^63 - 1`);
  return BigInt64Array.from(big);
}

/** Targets: line q lists query q's gallery rows (one or more, separated by spaces or commas). */
function readTargets(path, queries, galleryRows) {
  const { VlkError } = vlk();
  const lines = readLines(path);
  if (lines.length !== queries) throw new VlkError('ERR_VLK_SHAPE', `${path}: ${lines.length} lines, expected one per query (${queries})`);
  const offsets = new Int32Array(queries + 1);
  const ids = [];
  for (let q = 0; q < queries; q++) {
    const parts = lines[q].split(/[\s,]+/).filter(Boolean);
    if (parts.length === 0) throw new VlkError('ERR_VLK_CORRUPT', `${path}: line ${q + 1} is empty, expected gallery rows`);
    for (const p of parts) {
      const r = Number(p);
      if (!/^\d+$/.test(p) || r >= galleryRows) {
        throw new VlkError('ERR_VLK_CORRUPT', `${path}: line ${q + 1}: "${p}" is not a gallery row in 0..${galleryRows - 1}`);
      }
      ids.push(r);
    }
    offsets[q + 1] = ids.length;
  }
  return { offsets, ids: Int32Array.from(ids) };
}

const idValue = (id) => (typeof id === 'bigint' ? (id <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(id) : id.toString()) : id);
const round = (x, digits = 2) => Number(x.toFixed(digits));

function printTable(header, rows, align) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => (align[i] === 'r' ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i]))).join('  ').trimEnd();
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
  process.stdout.write(`${out.join('\n')}\n`);
}

// ---------------------------------------------------------------------------------------------
// Commands.

function infoAction(opts) {
  const inf = vlk().info();
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(inf, null, 2)}\n`);
    return;
  }
  const mb = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const lines = [
    `vlkernels ${inf.version} (Node-API ${inf.napiVersion}, Node ${process.versions.node})`,
    `ISA: ${inf.isa} (detected ${inf.detectedIsa}; usable: ${inf.isas.join(', ')})`,
    `threads: ${inf.threads}, queued tasks: ${inf.queueDepth}`,
    `block cache: ${mb(inf.memory.cachedBytes)} held of ${mb(inf.memory.limitBytes)}, ${inf.memory.hits} hits, ${inf.memory.misses} misses`,
    `CUDA: ${inf.cuda.usable ? `usable (${inf.cuda.device?.name ?? 'device 0'})` : `not usable (${inf.cuda.reason})`}`,
  ];
  if (inf.isaError) lines.push(`ISA configuration error: ${inf.isaError}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function indexBuildAction(vectorsPath, opts) {
  const { FlatIndex } = vlk();
  const m = readVectors(vectorsPath, opts);
  const ids = opts.ids === undefined ? undefined : readIds(opts.ids, m.rows);
  const index = new FlatIndex({ dim: m.cols, metric: opts.metric, storage: opts.precision });
  try {
    // Batches of whole rows so the bar can advance between native calls; results do not depend on them.
    const batch = Math.max(1, Math.min(m.rows, Math.floor((1 << 22) / m.cols)));
    const bar = progress('adding', m.rows, 'vectors', opts.quiet);
    const t0 = performance.now();
    for (let r = 0; r < m.rows; r += batch) {
      const n = Math.min(batch, m.rows - r);
      index.add({ data: m.data.subarray(r * m.cols, (r + n) * m.cols), rows: n, cols: m.cols }, ids?.subarray(r, r + n));
      bar.update(r + n);
      await tick();
    }
    bar.stop();
    const addMs = performance.now() - t0;
    let saveBar = null;
    const t1 = performance.now();
    await index.save(opts.output, {
      onProgress: (done, total) => {
        saveBar ??= progress('saving', total, 'bytes', opts.quiet);
        saveBar.update(done);
      },
    });
    saveBar?.stop();
    if (!opts.quiet) {
      process.stdout.write(
        `indexed ${m.rows} x ${m.cols} (${opts.metric}, ${opts.precision}) in ${(addMs / 1e3).toFixed(2)} s, ` +
          `saved ${opts.output} in ${((performance.now() - t1) / 1e3).toFixed(2)} s\n`,
      );
    }
  } finally {
    index.close();
  }
}

async function searchAction(indexPath, queriesPath, opts) {
  const { FlatIndex, VlkError } = vlk();
  const index = await FlatIndex.load(indexPath);
  try {
    if (opts.metric !== undefined && opts.metric !== index.metric) {
      throw new VlkError('ERR_VLK_INVALID_ARG', `--metric: ${opts.metric}, but ${indexPath} was built for ${index.metric}`);
    }
    const q = readVectors(queriesPath, opts);
    if (q.cols !== index.dim) {
      throw new VlkError('ERR_VLK_DIM_MISMATCH', `${queriesPath}: dim ${q.cols}, the index ${indexPath} has dim ${index.dim}`);
    }
    const k = opts.k;
    const ids = [];
    const scores = new Float32Array(q.rows * k);
    const counts = new Int32Array(q.rows);
    const batch = Math.max(1, Math.min(q.rows, 1024));
    const bar = progress('searching', q.rows, 'queries', opts.quiet);
    for (let r = 0; r < q.rows; r += batch) {
      const n = Math.min(batch, q.rows - r);
      const res = await index.search({ data: q.data.subarray(r * q.cols, (r + n) * q.cols), rows: n, cols: q.cols }, { k });
      for (const id of res.ids) ids.push(id);
      scores.set(res.scores, r * k);
      counts.set(res.counts, r);
      bar.update(r + n);
    }
    bar.stop();
    if (opts.json) {
      const results = [];
      for (let i = 0; i < q.rows; i++) {
        results.push({
          query: i,
          ids: ids.slice(i * k, i * k + counts[i]).map(idValue),
          scores: Array.from(scores.subarray(i * k, i * k + counts[i])),
        });
      }
      process.stdout.write(`${JSON.stringify({ index: indexPath, metric: index.metric, k, queries: q.rows, results })}\n`);
      return;
    }
    const rows = [];
    for (let i = 0; i < q.rows; i++) {
      for (let r = 0; r < counts[i]; r++) rows.push([i, r + 1, String(idValue(ids[i * k + r])), scores[i * k + r].toFixed(6)]);
    }
    printTable(['query', 'rank', 'id', 'score'], rows, ['r', 'r', 'r', 'r']);
  } finally {
    index.close();
  }
}

async function evalFlickrAction(opts) {
  const { flickrFromEmbeddings } = vlk();
  const images = readVectors(opts.images, opts);
  const captions = readVectors(opts.captions, opts);
  const r = await flickrFromEmbeddings(images, captions, { perImage: opts.perImage, metric: opts.metric });
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  process.stdout.write(`${r.images} images, ${r.captions} captions (${opts.perImage} per image), ${opts.metric}\n`);
  const row = (name, d) => [name, d.r1.toFixed(1), d.r5.toFixed(1), d.r10.toFixed(1), d.medr];
  printTable(['direction', 'R@1', 'R@5', 'R@10', 'medr'], [row('image->text', r.i2t), row('text->image', r.t2i)], ['l', 'r', 'r', 'r', 'r']);
  process.stdout.write(`rSum ${r.rsum.toFixed(1)}\n`);
}

async function evalRanksAction(opts) {
  const { rankOfTargets, recallAtK, medr } = vlk();
  const q = readVectors(opts.queries, opts);
  const g = readVectors(opts.gallery, opts);
  const targets = readTargets(opts.targets, q.rows, g.rows);
  const r = await rankOfTargets(q, g, targets, { metric: opts.metric });
  const recall = recallAtK(r.best, opts.ks);
  const median = medr(r.best);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ queries: q.rows, gallery: g.rows, metric: opts.metric, recall, medr: median, ties: r.ties })}\n`);
    return;
  }
  process.stdout.write(`${q.rows} queries, gallery ${g.rows}, ${opts.metric}\n`);
  printTable(
    ['K', 'recall@K (%)'],
    opts.ks.map((k) => [k, recall[`r${k}`].toFixed(2)]),
    ['r', 'r'],
  );
  process.stdout.write(`medr ${median}${r.ties > 0 ? `; ${r.ties} queries have an exact score tie at their target` : ''}\n`);
}

function benchOperations() {
  if (!existsSync(join(benchDir, 'run.mjs'))) return null;
  return readdirSync(benchDir)
    .filter((f) => f.endsWith(BENCH_SUFFIX))
    .map((f) => f.slice(0, -BENCH_SUFFIX.length))
    .sort();
}

function benchAction(operation, extra, opts, cmd) {
  const ops = benchOperations();
  if (ops === null) {
    throw new (vlk().VlkError)('ERR_VLK_IO', `${join(benchDir, 'run.mjs')}: not found (the benchmarks ship with the source repository, not the package)`);
  }
  if (operation !== 'all' && !ops.includes(operation)) {
    cmd.error(`error: unknown benchmark "${operation}"; known: ${ops.join(', ')}, all`, { exitCode: 2, code: 'commander.invalidArgument' });
  }
  const args = [];
  if (opts.peers === true) args.push('--peers');
  else if (typeof opts.peers === 'string') args.push('--peers', opts.peers);
  if (opts.chart !== undefined) args.push('--chart', opts.chart);
  if (opts.quick) args.push('--quick');
  args.push(...extra);
  for (const op of operation === 'all' ? ops : [operation]) {
    const r = spawnSync(process.execPath, [join(benchDir, 'run.mjs'), op, ...args], { stdio: 'inherit', cwd: root });
    if (r.status !== 0) {
      process.exitCode = r.status === 2 ? 2 : 1;
      if (r.status !== 2) process.stderr.write(`vlk bench: ${op} exited with ${r.status ?? r.signal}\n`);
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The program. Settings given before .command() (exitOverride, version) are inherited by subcommands.

function build() {
  const program = new Command('vlk')
    .description('vlkernels from the shell: exact vector indexes, search, retrieval metrics and benchmarks')
    .version(version, '-V, --version')
    .exitOverride()
    .showHelpAfterError('(add --help for usage)');
  const sub = (parent, name, description) =>
    parent.command(name).description(description).version(version, '-V, --version').exitOverride().showHelpAfterError('(add --help for usage)');

  sub(program, 'info', 'the addon: version, ISA path, threads, block cache, CUDA')
    .option('--json', 'print info() as JSON')
    .action(infoAction);

  const index = sub(program, 'index', 'index files');
  addVectorFileOptions(
    sub(index, 'build', 'build a FlatIndex from a vector file and save it (atomically)')
      .argument('<vectors>', 'N x D float32 vectors (.npy, .fvecs, ...)')
      .requiredOption('-o, --output <index>', 'index file to write')
      .addOption(metricOption('cosine'))
      .addOption(new Option('--precision <storage>', 'vector storage; bf16 and i8 still return exact results').choices(['f32', 'bf16', 'i8']).default('f32'))
      .option('--ids <file>', 'one integer id per line, one line per vector (default: row numbers)')
      .option('-q, --quiet', 'no progress and no summary on stderr'),
  ).action(indexBuildAction);

  addVectorFileOptions(
    sub(program, 'search', 'search an index file with query vectors')
      .argument('<index>', 'index file written by `vlk index build`')
      .argument('<queries>', 'Q x D float32 query vectors')
      .option('-k, --k <k>', 'results per query', positiveInt('-k'), 10)
      .addOption(new Option('--json', 'print one JSON document').conflicts('table'))
      .addOption(new Option('--table', 'print a table: query, rank, id, score (default)'))
      .addOption(metricOption())
      .option('-q, --quiet', 'no progress on stderr'),
  ).action(searchAction);

  const evalCmd = sub(program, 'eval', 'retrieval metrics of a benchmark protocol from embeddings');
  addVectorFileOptions(
    sub(evalCmd, 'flickr', 'Flickr30K / COCO 5K protocol: R@1/5/10 both directions, medr, rSum')
      .requiredOption('--images <file>', 'N x D image embeddings')
      .requiredOption('--captions <file>', 'perImage*N x D caption embeddings, image-major')
      .option('--per-image <n>', 'captions per image', positiveInt('--per-image'), 5)
      .addOption(metricOption('cosine'))
      .option('--json', 'print the report as JSON'),
  ).action(evalFlickrAction);
  addVectorFileOptions(
    sub(evalCmd, 'ranks', 'recall@K of ground-truth gallery rows (rank of targets)')
      .requiredOption('--queries <file>', 'Q x D query embeddings')
      .requiredOption('--gallery <file>', 'N x D gallery embeddings')
      .requiredOption('--targets <file>', 'one line per query: its target gallery rows (0-based), space or comma separated')
      .option('--ks <list>', 'K values', kList, [1, 5, 10])
      .addOption(metricOption('cosine'))
      .option('--json', 'print the report as JSON'),
  ).action(evalRanksAction);

  sub(program, 'bench', 'run a benchmark (bench/run.mjs; search, compose, graph, ..., or all)')
    .argument('<operation>', 'benchmark: search, compose, graph, another bench/*.bench.mjs, or all')
    .argument('[args...]', 'more options for the benchmark (after --)')
    .option('--peers [list]', 'run the peers (numpy, FAISS, PyTorch, usearch, hnswlib-node), or a comma-separated subset')
    .option('--chart <path>', 'write an SVG chart')
    .option('--quick', 'smaller workload (smoke run)')
    .allowUnknownOption()
    .action(benchAction);
  return program;
}

async function main() {
  const program = build();
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has printed the message (or the help); 0 for --help / --version, 2 for any usage error.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    if (err !== null && typeof err === 'object' && typeof err.code === 'string' && /^(ERR_VLK_|ABORT_ERR)/.test(err.code)) {
      process.stderr.write(`${err.code}: ${err.message}\n`);
    } else {
      process.stderr.write(`vlk: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    process.exitCode = 1;
  }
}

await main();
