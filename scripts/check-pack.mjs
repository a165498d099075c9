// Packaging check (node scripts/check-pack.mjs): `npm pack` (prepack builds dist/ and the
// prebuild), then installs the tarball into an empty folder with `npm install <tgz> --ignore-scripts
// --offline` (no compiler involved) and checks that require() and import both work, load the
// shipped prebuild, share one native instance, and type-check through the exports map.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  const scripts = pkg.scripts ?? {};
  check(!scripts.install && !scripts.preinstall && !scripts.postinstall && pkg.gypfile === false, 'no install scripts, gypfile false');

  // 2. Install into an empty project, offline, without running any script.
  const app = join(work, 'app');
  run('mkdir', ['-p', app], work);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'vlk-pack-check', version: '1.0.0', private: true }));
  run(npm, ['install', tarball, '--ignore-scripts', '--offline', '--no-audit', '--no-fund'], app);
  check(true, 'npm install <tgz> --ignore-scripts --offline');

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
