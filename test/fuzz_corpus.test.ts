// The fuzz seed corpus (test/fuzz/corpus) replayed through the public API, and seeded mutations of
// it (bit flips, byte overwrites, truncations, extensions, spliced length fields): the path a
// hostile file takes in a service (FlatIndex.fromBufferSync / fromBuffer, readSafetensorsSync,
// readNpyAny, readFvecs / readIvecs / readBvecs).
// Each input must either load, and then behave (search, save, reload to the same bytes), or fail
// with ERR_VLK_CORRUPT naming a field; nothing else, and no crash. Runs without clang, so CI always
// has this smoke check; the libFuzzer targets (scripts/fuzz.sh) go deeper on the same readers.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlatIndex, readBvecs, readFvecs, readIvecs, readNpyAny, readSafetensorsSync, VlkError } from './helpers/lib';
import { repoRoot } from './helpers/paths';
import { reseal } from './helpers/crc32c';

const corpusDir = join(repoRoot, 'test', 'fuzz', 'corpus');
const seed = Number(process.env.VLK_FUZZ_SEED ?? 20261125);
const MUTATIONS = Number(process.env.VLK_FUZZ_MUTATIONS ?? 400);

function seeds(target: string): { name: string; bytes: Buffer }[] {
  return readdirSync(join(corpusDir, target))
    .sort()
    .map((name) => ({ name, bytes: readFileSync(join(corpusDir, target, name)) }));
}

function prng(s: number): () => number {
  let x = s >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

/** One mutation of `b`: what a corrupted download, a truncated write or a crafted file looks like. */
function mutate(b: Buffer, rnd: () => number): Buffer {
  const out = Buffer.from(b);
  const at = () => Math.floor(rnd() * Math.max(1, out.length));
  switch (Math.floor(rnd() * 6)) {
    case 0: // a few bit flips
      for (let i = 0, n = 1 + Math.floor(rnd() * 4); i < n && out.length > 0; i++) out[at()] ^= 1 << Math.floor(rnd() * 8);
      return out;
    case 1: // a byte run overwritten with 0x00 / 0xff / random
      if (out.length > 0) {
        const start = at();
        const fill = [0, 0xff, Math.floor(rnd() * 256)][Math.floor(rnd() * 3)];
        out.fill(fill, start, Math.min(out.length, start + 1 + Math.floor(rnd() * 16)));
      }
      return out;
    case 2: // truncated
      return out.subarray(0, at());
    case 3: // extended
      return Buffer.concat([out, Buffer.alloc(1 + Math.floor(rnd() * 128), Math.floor(rnd() * 256))]);
    case 4: // a 64-bit field replaced by an extreme value (lengths, counts, offsets)
      if (out.length >= 8) {
        const pos = Math.floor(rnd() * (out.length - 7)) & ~7;
        const v = [0n, 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 63n - 1n, 2n ** 64n - 1n, BigInt(out.length)][Math.floor(rnd() * 7)];
        out.writeBigUInt64LE(v, pos);
      }
      return out;
    default: // a 32-bit field replaced
      if (out.length >= 4) {
        const pos = Math.floor(rnd() * (out.length - 3)) & ~3;
        out.writeUInt32LE([0, 1, 0x7fffffff, 0xffffffff, 1 << 20, (1 << 20) + 1][Math.floor(rnd() * 6)], pos);
      }
      return out;
  }
}

function expectCorrupt(e: unknown, what: string): void {
  if (!(e instanceof VlkError)) throw new Error(`${what}: not a VlkError: ${(e as Error)?.stack ?? e}`);
  assert.is(e.code, 'ERR_VLK_CORRUPT', `${what}: ${e.message}`);
  assert.ok(e.message.length > 10, `${what}: message '${e.message}'`);
}

// ---- index images ------------------------------------------------------------------------------
const Index = suite('fuzz corpus: index images through FlatIndex.fromBuffer');

/** Loads an image; a loaded index must search and save back to identical bytes (f32 storage). */
function tryIndex(bytes: Buffer, what: string): 'loaded' | 'rejected' {
  let index: FlatIndex;
  try {
    index = FlatIndex.fromBufferSync(bytes);
  } catch (e) {
    expectCorrupt(e, what);
    return 'rejected';
  }
  try {
    if (index.size > 0 && index.dim <= 4096) {
      const r = index.searchSync(new Float32Array(index.dim).fill(0.25), { k: 3 });
      assert.is(r.counts[0], Math.min(3, index.size), `${what}: counts`);
    }
    if (index.storage === 'f32') assert.ok(index.toBufferSync().equals(bytes), `${what}: saved bytes differ from the loaded ones`);
  } finally {
    index.close();
  }
  return 'loaded';
}

Index('every committed seed loads (the CRC-fixed ones after their mode byte)', () => {
  const all = seeds('fuzz_index_file');
  assert.ok(all.length >= 10, `${all.length} seeds`);
  for (const { name, bytes } of all) assert.is(tryIndex(bytes.subarray(1), name), 'loaded', name);
});

Index(`${MUTATIONS} mutations of each seed: loaded and consistent, or ERR_VLK_CORRUPT (seed ${seed})`, () => {
  const rnd = prng(seed);
  let loaded = 0;
  let rejected = 0;
  for (const { name, bytes } of seeds('fuzz_index_file')) {
    if (name.endsWith('-raw')) continue; // the same images as the -fixcrc seeds
    for (let i = 0; i < MUTATIONS; i++) {
      const m = mutate(bytes.subarray(1), rnd);
      if (tryIndex(m, `${name} mutation ${i}`) === 'loaded') loaded++;
      else rejected++;
    }
  }
  console.log(`  index images: ${loaded} loaded, ${rejected} rejected with ERR_VLK_CORRUPT`);
  // Checksums cover every byte: only mutations that change nothing (or extend nothing) load.
  assert.ok(rejected > loaded, `${rejected} rejected vs ${loaded} loaded`);
});

Index('async fromBuffer agrees with fromBufferSync on mutated images', async () => {
  const rnd = prng(seed + 1);
  for (const { name, bytes } of seeds('fuzz_index_file').slice(0, 4)) {
    for (let i = 0; i < 50; i++) {
      const m = mutate(bytes.subarray(1), rnd);
      const sync = (() => {
        try {
          FlatIndex.fromBufferSync(m).close();
          return 'ok';
        } catch (e) {
          return (e as VlkError).code;
        }
      })();
      const asyncCode = await FlatIndex.fromBuffer(m).then(
        (ix) => (ix.close(), 'ok'),
        (e) => (e as VlkError).code,
      );
      assert.is(asyncCode, sync, `${name} mutation ${i}`);
    }
  }
});


Index('an image row whose squared norm overflows float32: ERR_VLK_CORRUPT naming the row and id, every storage', () => {
  // Found by fuzz_index_file (bf16 codes only: an l2 search silently dropped the row). add() refuses
  // such rows; a file can still hold them, so the loader refuses them too.
  for (const [storage, approximate] of [['f32', false], ['bf16', false], ['bf16', true]] as const) {
    const index = new FlatIndex({ dim: 4, metric: 'l2', storage, approximate });
    index.add(new Float32Array([0, 0, 0, 0, 1, 0, 0, -3.25]), [1, 8]);
    const img = index.toBufferSync();
    index.close();
    const sec = approximate ? 2 : 1; // codes (bf16 bits) or f32 rows
    const off = Number(img.readBigUInt64LE(48 + 16 * sec));
    if (approximate) img.writeUInt16LE(0xf900, off + 4 * 2); // bf16 -4.2e34 at row 1, col 0
    else img.writeFloatLE(-6.6e35, off + 4 * 4);
    let err: unknown;
    try {
      FlatIndex.fromBufferSync(reseal(img)).close();
    } catch (e) {
      err = e;
    }
    assert.instance(err, VlkError, `${storage}${approximate ? ' approximate' : ''}: loaded`);
    assert.is((err as VlkError).code, 'ERR_VLK_CORRUPT');
    assert.match((err as VlkError).message, /row 1 \(id 8\) has squared norm/);
  }
});

// ---- safetensors -------------------------------------------------------------------------------
const St = suite('fuzz corpus: safetensors through readSafetensorsSync');

function trySafetensors(bytes: Buffer, what: string): 'loaded' | 'rejected' {
  try {
    const r = readSafetensorsSync(bytes);
    for (const [name, t] of Object.entries(r.tensors)) {
      const n = t.shape.reduce((a, b) => a * b, 1);
      assert.ok(t.data.length >= 0 && (t.dtype !== 'F32' || t.data.length === n), `${what}: ${name} length`);
    }
    return 'loaded';
  } catch (e) {
    if (e instanceof VlkError && e.code === 'ERR_VLK_TYPE') return 'rejected'; // dtypes JS has no array for
    expectCorrupt(e, what);
    return 'rejected';
  }
}

St('every committed seed reads', () => {
  for (const { name, bytes } of seeds('fuzz_safetensors')) assert.is(trySafetensors(bytes, name), 'loaded', name);
});

St(`${MUTATIONS} mutations of each seed: read, or ERR_VLK_CORRUPT (seed ${seed})`, () => {
  const rnd = prng(seed + 2);
  let loaded = 0;
  let rejected = 0;
  for (const { name, bytes } of seeds('fuzz_safetensors')) {
    for (let i = 0; i < MUTATIONS; i++) {
      if (trySafetensors(mutate(bytes, rnd), `${name} mutation ${i}`) === 'loaded') loaded++;
      else rejected++;
    }
  }
  console.log(`  safetensors: ${loaded} read, ${rejected} rejected`);
  assert.ok(loaded > 0 && rejected > 0, `${loaded} read, ${rejected} rejected`);
});

// ---- .npy and .fvecs / .ivecs / .bvecs (files in a temp folder) ------------------------------
const Files = suite('fuzz corpus: .npy and .*vecs files through the readers');
const dir = mkdtempSync(join(tmpdir(), 'vlk-fuzz-corpus-'));
Files.after(() => rmSync(dir, { recursive: true, force: true }));

/** Reads `bytes` as a file; 'loaded', or the error code (every error must be a VlkError naming the file). */
function tryFile(bytes: Buffer, ext: string, read: (path: string) => unknown, what: string): string {
  const path = join(dir, `input${ext}`);
  writeFileSync(path, bytes);
  try {
    read(path);
    return 'loaded';
  } catch (e) {
    if (!(e instanceof VlkError)) throw new Error(`${what}: not a VlkError: ${(e as Error)?.stack ?? e}`);
    assert.ok(e.message.includes(path), `${what}: the message names the file: ${e.message}`);
    // Printable: header bytes are escaped in messages.
    assert.not.match(e.message, /[\u0000-\u001f\u007f-\u009f]/, `${what}: control character in '${e.message}'`);
    return e.code;
  }
}

Files(`npy seeds and ${MUTATIONS} mutations of each: read, or CORRUPT / TYPE / SHAPE (seed ${seed})`, () => {
  const rnd = prng(seed + 3);
  const outcomes: Record<string, number> = {};
  for (const { name, bytes } of seeds('fuzz_npy')) {
    const first = tryFile(bytes, '.npy', readNpyAny, name);
    if (!/structured|short/.test(name)) assert.is(first, 'loaded', name);
    for (let i = 0; i < MUTATIONS; i++) {
      const code = tryFile(mutate(bytes, rnd), '.npy', readNpyAny, `${name} mutation ${i}`);
      assert.ok(['loaded', 'ERR_VLK_CORRUPT', 'ERR_VLK_TYPE', 'ERR_VLK_SHAPE'].includes(code), `${name} mutation ${i}: ${code}`);
      outcomes[code] = (outcomes[code] ?? 0) + 1;
    }
  }
  console.log(`  npy: ${JSON.stringify(outcomes)}`);
  assert.ok((outcomes.loaded ?? 0) > 0 && (outcomes.ERR_VLK_CORRUPT ?? 0) > 0, JSON.stringify(outcomes));
});

Files(`vecs seeds and ${MUTATIONS} mutations of each: read, or CORRUPT (seed ${seed})`, () => {
  const rnd = prng(seed + 4);
  const outcomes: Record<string, number> = {};
  for (const { name, bytes } of seeds('fuzz_vecs')) {
    const file = bytes.subarray(1); // after the target's mode byte
    const [ext, read] = name.includes('bvecs') ? ['.bvecs', readBvecs] : name.includes('ivecs') ? ['.ivecs', readIvecs] : ['.fvecs', readFvecs];
    const first = tryFile(file, ext, read, name);
    if (!name.includes('mismatch')) assert.is(first, 'loaded', name);
    for (let i = 0; i < MUTATIONS; i++) {
      const code = tryFile(mutate(file, rnd), ext, read, `${name} mutation ${i}`);
      assert.ok(code === 'loaded' || code === 'ERR_VLK_CORRUPT', `${name} mutation ${i}: ${code}`);
      outcomes[code] = (outcomes[code] ?? 0) + 1;
    }
  }
  console.log(`  vecs: ${JSON.stringify(outcomes)}`);
  assert.ok((outcomes.loaded ?? 0) > 0 && (outcomes.ERR_VLK_CORRUPT ?? 0) > 0, JSON.stringify(outcomes));
});

Index.run();
St.run();
Files.run();
