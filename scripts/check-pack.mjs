// Packaging check (npm run check:pack): `npm pack` (prepack builds dist/ and the prebuild, whose
// glibc floor postprebuild checks), then the tarball's contents (every local prebuild shipped, only
// what "files" names, sizes reported), then `npm install <tgz> --ignore-scripts --offline` into an
// empty folder: require() and import work, load the prebuild, share one instance, type-check.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const keep = process.argv.includes('--keep');
let failures = 0;

function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures += 1;
}

function run(cmd, args, cwd) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) {
    process.stderr.write(r.stdout ?? '');
    process.stderr.write(r.stderr ?? '');
    throw new Error(`${cmd} ${args.join(' ')} failed with status ${r.status}`);
  }
  return r.stdout;
}

const work = mkdtempSync(join(tmpdir(), 'vlk-pack-'));
try {
  // 1. Pack (prepack runs build:ts and prebuild).
  console.log(`packing into ${work} ...`);
  // Lifecycle scripts print to the same stdout; the JSON report is the last top-level array.
  const packOut = run(npm, ['pack', '--json', '--pack-destination', work], root);
  const packed = JSON.parse(packOut.slice(packOut.lastIndexOf('\n[') + 1))[0];
  const files = packed.files.map((f) => f.path);
  const tarball = join(work, packed.filename);
  console.log(`${packed.filename}: ${files.length} files, ${packed.size} bytes`);
  check(files.some((f) => /^prebuilds\/linux-x64\/[^/]+\.node$/.test(f)), 'tarball has prebuilds/linux-x64/*.node');
  check(files.includes('dist/cjs/index.js') && files.includes('dist/cjs/index.d.ts'), 'tarball has dist/cjs (js + d.ts)');
  check(files.includes('dist/esm/index.mjs') && files.includes('dist/esm/index.d.mts'), 'tarball has dist/esm (mjs + d.mts)');
  check(!files.some((f) => f === 'binding.gyp' || f.startsWith('native/') || f.startsWith('lib/')), 'tarball has no binding.gyp, native/ or lib/');
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  console.log(`size: ${(packed.size / 1048576).toFixed(2)} MiB packed, ${(packed.unpackedSize / 1048576).toFixed(2)} MiB unpacked`);
  const sizeOf = new Map(packed.files.map((f) => [f.path, f.size]));
  for (const f of files.filter((p) => p.startsWith('prebuilds/'))) console.log(`  ${f}: ${sizeOf.get(f)} bytes`);
  // Every prebuild built here (prebuildify per platform, scripts/build-arm64.sh --addon) is shipped.
  const localPrebuilds = [];
  if (existsSync(join(root, 'prebuilds'))) {
    for (const dir of readdirSync(join(root, 'prebuilds'))) {
      if (!statSync(join(root, 'prebuilds', dir)).isDirectory()) continue;
      for (const f of readdirSync(join(root, 'prebuilds', dir))) if (f.endsWith('.node')) localPrebuilds.push(`prebuilds/${dir}/${f}`);
    }
  }
  const unshipped = localPrebuilds.filter((f) => !files.includes(f));
  check(localPrebuilds.length > 0 && unshipped.length === 0, `every local prebuild is in the tarball (${localPrebuilds.join(', ') || 'none built'}${unshipped.length ? `; missing ${unshipped.join(', ')}` : ''})`);
  // Only what "files" names, plus what npm always adds; no sources, tests, benchmarks or scripts.
  const allowed = (f) =>
    /^(package\.json|README\.md|LICEN[SC]E(\.\w+)?|CHANGELOG\.md)$/i.test(f) ||
    pkg.files.some((entry) => (entry.endsWith('/') ? f.startsWith(entry) : f === entry));
  const extra = files.filter((f) => !allowed(f));
  check(extra.length === 0, `tarball holds only "files" entries (${extra.length ? `extra: ${extra.slice(0, 10).join(', ')}` : pkg.files.join(', ')})`);
  const leaked = files.filter((f) => /(^|\/)(test|tests|bench|native|scripts|cmake|\.ci)\//.test(f) || /\.(cpp|hpp|cu|gyp|gypi|tsbuildinfo)$/.test(f) || (/\.ts$/.test(f) && !/\.d\.m?ts$/.test(f)));
  check(leaked.length === 0, `no sources, tests or benchmarks shipped${leaked.length ? ` (found ${leaked.slice(0, 10).join(', ')})` : ''}`);
  const maxBytes = Number(process.env.VLK_PACK_MAX_BYTES || 32 * 1048576);
  check(packed.size <= maxBytes, `tarball ${packed.size} bytes <= ${maxBytes} (VLK_PACK_MAX_BYTES)`);
  const scripts = pkg.scripts ?? {};
  check(!scripts.install && !scripts.preinstall && !scripts.postinstall && pkg.gypfile === false, 'no install scripts, gypfile false');

  // 2. Install into an empty project, offline, without running any script.
  const app = join(work, 'app');
  run('mkdir', ['-p', app], work);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'vlk-pack-check', version: '1.0.0', private: true }));
  run(npm, ['install', tarball, '--ignore-scripts', '--offline', '--no-audit', '--no-fund'], app);
  check(true, 'npm install <tgz> --ignore-scripts --offline');
  // The installed linux prebuilds keep the glibc floor (the same check postprebuild ran).
  const installedPre = join(app, 'node_modules', 'vlkernels', 'prebuilds');
  const linuxPre = existsSync(installedPre)
    ? readdirSync(installedPre).filter((d) => d.startsWith('linux-')).flatMap((d) =>
        readdirSync(join(installedPre, d)).filter((f) => f.endsWith('.node') && !f.includes('.musl.')).map((f) => join(installedPre, d, f)))
    : [];
  if (linuxPre.length > 0) {
    const glibc = spawnSync(process.execPath, [join(root, 'scripts', 'check-glibc.mjs'), ...linuxPre], { encoding: 'utf8' });
    process.stdout.write(glibc.stdout.replace(/^/gm, '  '));
    check(glibc.status === 0, 'installed linux prebuilds within the glibc floor (scripts/check-glibc.mjs)');
  }

  // 3. require() works and loads the shipped prebuild.
  const cjsScript = `
    const v = require('vlkernels');
    const g = new Float32Array([1, 0, 0, 1, 0.6, 0.8]);
    const r = v.searchSync(new Float32Array([0, 1]), g, { k: 2, dim: 2 });
    const nativePath = Object.keys(require.cache).find((k) => k.endsWith('.node'));
    console.log(JSON.stringify({ indices: [...r.indices], info: v.info(), nativePath }));`;
  const cjsOut = JSON.parse(execFileSync(process.execPath, ['-e', cjsScript], { cwd: app, encoding: 'utf8' }).trim().split('\n').pop());
  check(JSON.stringify(cjsOut.indices) === '[1,2]', `require('vlkernels').searchSync works (indices ${JSON.stringify(cjsOut.indices)})`);
  check(/prebuilds[/\\]linux-x64[/\\]/.test(cjsOut.nativePath ?? ''), `loads the prebuild (${cjsOut.nativePath})`);
  check(cjsOut.info.version === pkg.version, `info().version = ${cjsOut.info.version}, isa ${cjsOut.info.isa}`);

  // 4. import works and shares the one native instance with require().
  const esmScript = `
    import { createRequire } from 'node:module';
    import * as esm from 'vlkernels';
    const cjs = createRequire(import.meta.url)('vlkernels');
    const r = await esm.search(new Float32Array([0, 1]), new Float32Array([1, 0, 0, 1]), { k: 1, dim: 2 });
    console.log(JSON.stringify({ same: esm.searchSync === cjs.searchSync && esm.binding === cjs.binding && esm.VlkError === cjs.VlkError, index: r.indices[0] }));`;
  const esmOut = JSON.parse(
    execFileSync(process.execPath, ['--input-type=module', '-e', esmScript], { cwd: app, encoding: 'utf8' }).trim().split('\n').pop(),
  );
  check(esmOut.index === 1, 'import { search } works');
  check(esmOut.same === true, 'import and require share one native instance');

  // 5. Types resolve through the exports map for both module kinds.
  writeFileSync(join(app, 'a.cts'), "import { searchSync, type SearchResult } from 'vlkernels';\nconst r: SearchResult = searchSync(new Float32Array(2), new Float32Array(2), { k: 1, dim: 2 });\nexport = r;\n");
  writeFileSync(join(app, 'b.mts'), "import { search, VlkError, type Info } from 'vlkernels';\nexport const p = search(new Float32Array(2), new Float32Array(2), { k: 1, dim: 2 });\nexport const e: VlkError | Info | undefined = undefined;\n");
  const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
  const types = spawnSync(
    process.execPath,
    [tsc, '--noEmit', '--strict', '--module', 'node16', '--moduleResolution', 'node16', '--types', 'node',
      '--typeRoots', join(root, 'node_modules', '@types'), 'a.cts', 'b.mts'],
    { cwd: app, encoding: 'utf8' },
  );
  if (types.status !== 0) process.stderr.write(types.stdout + types.stderr);
  check(types.status === 0, 'types resolve for require (.cts) and import (.mts)');
} catch (err) {
  check(false, err instanceof Error ? err.message : String(err));
} finally {
  if (keep) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}

console.log(failures === 0 ? 'check-pack: all checks passed' : `check-pack: ${failures} check(s) failed`);
process.exitCode = failures === 0 ? 0 : 1;
