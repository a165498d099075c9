// glibc floor check (node scripts/check-glibc.mjs [--glibc 2.28] [--glibcxx 3.4.25] [file.node ...]):
// reads each ELF's version needs (`readelf -V --wide`) and versioned dynamic symbols (`readelf
// --dyn-syms --wide`) and fails, naming every symbol, where a need is above the floor. Without
// files it checks prebuilds/linux-*/ (glibc builds) and build/Release/*.node.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

// The floor: glibc 2.28 (RHEL 8, Debian 10) and GCC 8's libstdc++ (GLIBCXX_3.4.25, CXXABI_1.3.11).
const floor = { GLIBC: '2.28', GLIBCXX: '3.4.25', CXXABI: '1.3.11' };
const usage = 'usage: node scripts/check-glibc.mjs [--glibc X.Y] [--glibcxx 3.4.N] [--cxxabi 1.3.N] [--quiet] [file.node ...]';

const files = [];
let quiet = false;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 1) {
  const a = argv[i];
  const flag = { '--glibc': 'GLIBC', '--glibcxx': 'GLIBCXX', '--cxxabi': 'CXXABI' }[a];
  if (flag) {
    const v = argv[i + 1];
    if (!v || !/^\d+(\.\d+)*$/.test(v)) {
      console.error(`check-glibc: ${a} needs a version like 2.28, got ${v ?? 'nothing'}\n${usage}`);
      process.exit(2);
    }
    floor[flag] = v;
    i += 1;
  } else if (a === '--quiet') quiet = true;
  else if (a === '-h' || a === '--help') {
    console.log(usage);
    process.exit(0);
  } else if (a.startsWith('-')) {
    console.error(`check-glibc: unknown option ${a}\n${usage}`);
    process.exit(2);
  } else files.push(resolve(a));
}

/** Compares dotted versions numerically: 2.9 < 2.28 < 2.34. */
function compareVersions(a, b) {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i += 1) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function readelf(args, file) {
  const r = spawnSync('readelf', [...args, file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`readelf not runnable (${r.error.message}); install binutils`);
  if (r.status !== 0) throw new Error(`readelf ${args.join(' ')} ${file}: ${r.stderr.trim() || `status ${r.status}`}`);
  return r.stdout;
}

/**
 * The version needs of an ELF file: [{ file, version }] from .gnu.version_r, and the undefined
 * dynamic symbols bound to each version name.
 */
function versionNeeds(file) {
  const needs = [];
  let lib = null;
  for (const line of readelf(['-V', '--wide'], file).split('\n')) {
    const f = /^\s*0x[0-9a-f]+:\s+Version:\s+\d+\s+File:\s+(\S+)/.exec(line);
    if (f) {
      lib = f[1];
      continue;
    }
    const n = /^\s*0x[0-9a-f]+:\s+Name:\s+(\S+)\s+Flags:/.exec(line);
    if (n && lib) needs.push({ file: lib, version: n[1] });
  }
  const symbols = new Map();
  for (const line of readelf(['--dyn-syms', '--wide'], file).split('\n')) {
    // "    12: 0000000000000000     0 FUNC    GLOBAL DEFAULT  UND dlopen@GLIBC_2.2.5 (3)"
    const m = /\sUND\s+([^@\s]+)@{1,2}(\S+)/.exec(line);
    if (!m) continue;
    const list = symbols.get(m[2]) ?? [];
    list.push(m[1]);
    symbols.set(m[2], list);
  }
  return { needs, symbols };
}

function isElf(file) {
  const b = readFileSync(file).subarray(0, 4);
  return b.length === 4 && b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46;
}

let muslOnly = 0;
function defaultFiles() {
  const out = [];
  const pre = join(root, 'prebuilds');
  if (existsSync(pre)) {
    for (const dir of readdirSync(pre)) {
      if (!dir.startsWith('linux-')) continue;
      for (const f of readdirSync(join(pre, dir))) {
        // prebuildify --tag-libc names musl builds *.musl.node; the floor is about glibc.
        if (!f.endsWith('.node')) continue;
        if (f.includes('.musl.')) muslOnly += 1;
        else out.push(join(pre, dir, f));
      }
    }
  }
  const rel = join(root, 'build', 'Release');
  if (existsSync(rel)) for (const f of readdirSync(rel)) if (f.endsWith('.node')) out.push(join(rel, f));
  return out;
}

const targets = files.length > 0 ? files : defaultFiles();
const floorText = `GLIBC <= ${floor.GLIBC}, GLIBCXX <= ${floor.GLIBCXX}, CXXABI <= ${floor.CXXABI}`;
if (targets.length === 0) {
  if (process.platform === 'linux' && muslOnly === 0) {
    console.error('check-glibc: nothing to check (no prebuilds/linux-*/*.node, no build/Release/*.node); build first');
    process.exit(1);
  }
  console.log(`check-glibc: skipped (no glibc Linux binaries here; ${muslOnly} musl prebuild(s) are outside the floor)`);
  process.exit(0);
}

let failed = 0;
for (const file of targets) {
  const name = relative(root, file) || file;
  if (!existsSync(file)) {
    console.log(`FAIL ${name}: no such file`);
    failed += 1;
    continue;
  }
  if (!isElf(file)) {
    console.log(`FAIL ${name}: not an ELF file`);
    failed += 1;
    continue;
  }
  let info;
  try {
    info = versionNeeds(file);
  } catch (err) {
    console.log(`FAIL ${name}: ${err.message}`);
    failed += 1;
    continue;
  }
  const max = {};
  const offending = [];
  for (const { file: lib, version } of info.needs) {
    const m = /^(GLIBC|GLIBCXX|CXXABI)_(\d+(?:\.\d+)*)$/.exec(version);
    if (!m) continue;
    const [, ns, v] = m;
    if (!max[ns] || compareVersions(v, max[ns]) > 0) max[ns] = v;
    if (compareVersions(v, floor[ns]) > 0) {
      const syms = info.symbols.get(version) ?? [];
      offending.push(`  ${version} (${lib}): ${syms.length > 0 ? syms.join(', ') : 'no symbol names it (a version need only)'}`);
    }
  }
  const maxText = ['GLIBC', 'GLIBCXX', 'CXXABI'].map((ns) => `${ns} ${max[ns] ?? '-'}`).join(', ');
  if (offending.length > 0) {
    console.log(`FAIL ${name}: needs above the floor (${floorText}); highest: ${maxText}`);
    for (const o of offending.sort()) console.log(o);
    failed += 1;
  } else if (!quiet) {
    console.log(`ok   ${name}: highest ${maxText}`);
  }
}

console.log(failed === 0 ? `check-glibc: ${targets.length} file(s) within ${floorText}` : `check-glibc: ${failed} of ${targets.length} file(s) above ${floorText}`);
process.exitCode = failed === 0 ? 0 : 1;
