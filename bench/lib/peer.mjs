// Shared harness for the JS search peers, the twin of bench/peers/peer_common.py: arguments, timing,
// one JSON report on stdout. Bench support layer; inputs are the .npy files from data.mjs.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadNpy } from './data.mjs';

export function parsePeerArgs(extra = {}) {
  const { values } = parseArgs({
    options: {
      gallery: { type: 'string' },
      queries: { type: 'string' },
      ks: { type: 'string', default: '10,100,1000' },
      repeats: { type: 'string', default: '3' },
      'latency-runs': { type: 'string', default: '30' },
      check: { type: 'string', default: '8' },
      ...extra,
    },
  });
  if (!values.gallery || !values.queries) throw new Error('--gallery and --queries are required');
  return {
    ...values,
    ks: values.ks.split(',').filter(Boolean).map(Number),
    repeats: Number(values.repeats),
    latencyRuns: Number(values['latency-runs']),
    check: Number(values.check),
  };
}

export function loadInputs(args) {
  return { g: loadNpy(args.gallery), q: loadNpy(args.queries) };
}

/** Runs fn() `repeats` times; returns { times (ms), out (the last result) }. */
export async function timeBest(fn, repeats) {
  const times = [];
  let out;
  for (let i = 0; i < repeats; i++) {
    out = undefined;
    const t0 = performance.now();
    out = await fn();
    times.push(performance.now() - t0);
  }
  return { times, out };
}

/**
 * Untimed warm-up calls of fn() until `settled` calls in a row map no new memory through
 * vlkernels' block cache (info().memory.misses unchanged; at most `max` calls): large results come back to
 * the cache only when V8 collects them, so the first few calls of a loop fault fresh pages in (on a
 * small VM about 0.4 ms per MB). A steady training or serving loop runs warm; PyTorch's allocator
 * reuses freed memory at once, so its single warm-up call suffices. Returns the calls made.
 */
export async function warmUp(fn, vlk, max = 12, settled = 3) {
  let calls = 0;
  let quiet = 0;
  while (calls < max && quiet < settled) {
    const before = vlk.info().memory.misses;
    await fn();
    calls++;
    quiet = vlk.info().memory.misses === before ? quiet + 1 : 0;
  }
  return calls;
}

/** Warm-up calls of fn() ({@link warmUp} when `vlk` is given, else one), then {@link timeBest}. */
export async function timeWarm(fn, repeats, vlk) {
  if (vlk) await warmUp(fn, vlk);
  else await fn();
  return timeBest(fn, repeats);
}

/** The upper middle element of xs (the element at index floor(n / 2) once sorted). */
export function upperMedian(xs) {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

/** Median and minimum of `runs` timed calls of fn(), after three untimed warm-up calls. */
export async function latency(fn, runs, k) {
  for (let i = 0; i < 3; i++) await fn();
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return { k, runs, medianMs: median(times), minMs: Math.min(...times) };
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function skip(name, reason) {
  process.stdout.write(JSON.stringify({ name, skipped: reason }) + '\n');
  process.exit(0);
}

export function emit(report) {
  process.stdout.write(JSON.stringify(report) + '\n');
}

/** Installed version of an npm package, found from its resolved entry (some packages do not export ./package.json). */
export function packageVersion(require, name) {
  let dir = dirname(require.resolve(name));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8'));
      if (pkg.name === name) return pkg.version;
    }
    const up = dirname(dir);
    if (up === dir) return 'unknown';
    dir = up;
  }
}
