// Build inputs (test/sources.test.ts): native/sources.gypi is the single source list (every
// native .cpp/.cu file in exactly one list, every listed path present, both builds read it, no
// globs, no -march=native), .cu files only in the CUDA list and the CPU build (binding.gyp) never
// compiling them, ISA kernel files include nothing that could merge inline code across ISAs, and
// the package manifest ships prebuilds without an install script.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { repoRoot } from './helpers/paths';

const gypiText = readFileSync(join(repoRoot, 'native', 'sources.gypi'), 'utf8');

function vars(): Record<string, string[]> {
  return JSON.parse(gypiText).variables;
}

function sourceLists(): Record<string, string[]> {
  const v = vars();
  return Object.fromEntries(Object.entries(v).filter(([key]) => key.endsWith('_sources')));
}

function walk(dir: string, out: string[] = []): string[] {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) walk(full, out);
    else if (/\.(cpp|cu)$/.test(name)) out.push(relative(repoRoot, full).split(sep).join('/'));
  }
  return out;
}

const readText = (rel: string) => readFileSync(join(repoRoot, rel), 'utf8');
/** The text without '#' comments (gyp and CMake both use them). */
const withoutComments = (text: string) => text.replace(/#.*$/gm, '');

// ---------------------------------------------------------------------------------------------
const List = suite('native/sources.gypi');

List('is plain JSON with the expected keys', () => {
  const v = vars();
  for (const key of [
    'vlk_core_sources',
    'vlk_avx2_sources',
    'vlk_avx512_sources',
    'vlk_binding_sources',
    'vlk_cuda_sources',
    'vlk_cuda_stub_sources',
    'vlk_cuda_test_sources',
    'vlk_native_test_sources',
    'vlk_include_dirs',
    'vlk_common_flags',
    'vlk_avx2_flags',
    'vlk_avx512_flags',
  ]) {
    assert.ok(Array.isArray(v[key]), `${key} is a list`);
    for (const item of v[key]) assert.type(item, 'string', `${key} holds strings`);
  }
});

List('every native/**/*.{cpp,cu} and test/native/*.cpp file is in exactly one source list', () => {
  const lists = sourceLists();
  const files = [...walk(join(repoRoot, 'native')), ...walk(join(repoRoot, 'test', 'native'))];
  assert.ok(files.length > 5, `found ${files.length} source files`);
  const problems: string[] = [];
  for (const file of files) {
    const owners = Object.entries(lists).filter(([, list]) => list.includes(file)).map(([key]) => key);
    if (owners.length !== 1) problems.push(`${file}: in ${owners.length ? owners.join(', ') : 'no list'}`);
  }
  assert.equal(problems, []);
});

List('every listed source and include dir exists, and no path is listed twice', () => {
  const lists = sourceLists();
  const seen = new Map<string, string>();
  const problems: string[] = [];
  for (const [key, list] of Object.entries(lists)) {
    for (const file of list) {
      if (!existsSync(join(repoRoot, file))) problems.push(`${key}: ${file} does not exist`);
      if (seen.has(file)) problems.push(`${file} listed in ${seen.get(file)} and ${key}`);
      seen.set(file, key);
      if (!/\.(cpp|cu)$/.test(file)) problems.push(`${key}: ${file} is not a .cpp/.cu file`);
    }
  }
  for (const dir of vars().vlk_include_dirs) {
    if (!existsSync(join(repoRoot, dir))) problems.push(`vlk_include_dirs: ${dir} does not exist`);
  }
  assert.equal(problems, []);
});

List('CUDA: .cu files only in vlk_cuda_sources, the stub in its own list, binding.gyp CPU-only', () => {
  const v = vars();
  const problems: string[] = [];
  for (const [key, list] of Object.entries(sourceLists())) {
    for (const file of list) {
      if (file.endsWith('.cu') && key !== 'vlk_cuda_sources') problems.push(`${key}: ${file} is a .cu file`);
    }
  }
  for (const file of v.vlk_cuda_sources) {
    if (!/^native\/cuda\/.+\.cu$/.test(file)) problems.push(`vlk_cuda_sources: ${file} is not native/cuda/**/*.cu`);
  }
  assert.ok(v.vlk_cuda_stub_sources.length > 0, 'a stub list');
  for (const file of v.vlk_cuda_stub_sources) {
    if (!/^native\/cuda\/[^/]+\.cpp$/.test(file)) problems.push(`vlk_cuda_stub_sources: ${file} is not native/cuda/*.cpp`);
  }
  assert.equal(problems, []);
  const gyp = withoutComments(readText('binding.gyp'));
  assert.not.match(gyp, /vlk_cuda_sources/, 'binding.gyp never compiles the CUDA sources (no nvcc)');
  assert.match(gyp, /vlk_cuda_stub_sources/, 'binding.gyp links the stub');
  assert.ok(v.vlk_include_dirs.includes('native'), 'native/ is an include dir ("cuda/common/cuda_api.hpp")');
  const cmake = withoutComments(readText('CMakeLists.txt'));
  for (const key of ['vlk_cuda_sources', 'vlk_cuda_stub_sources', 'vlk_cuda_test_sources']) {
    assert.match(cmake, new RegExp(key), `CMakeLists.txt reads ${key}`);
  }
});

List('ISA flags are per list: common flags carry no ISA or -march flag', () => {
  const v = vars();
  for (const flag of v.vlk_common_flags) {
    assert.not.match(flag, /^-m(avx|fma|arch|tune=native)/, `common flag ${flag}`);
  }
  assert.ok(v.vlk_avx2_flags.includes('-mavx2') && v.vlk_avx2_flags.includes('-mfma'), 'avx2 flags');
  assert.ok(v.vlk_avx512_flags.includes('-mavx512f'), 'avx512 flags');
  assert.not.ok(v.vlk_avx2_flags.some((f) => f.startsWith('-mavx512')), 'no AVX-512 flag in the AVX2 list');
  assert.not.match(gypiText, /march=native/);
});

List('binding.gyp and CMakeLists.txt read the list and name no sources or globs of their own', () => {
  const gyp = withoutComments(readText('binding.gyp'));
  assert.match(gyp, /native\/sources\.gypi/, 'binding.gyp includes native/sources.gypi');
  assert.not.match(gyp, /\.(cpp|cu)['"]/, 'binding.gyp lists no source file itself');
  assert.not.match(gyp, /march=native/, 'binding.gyp: no -march=native');
  const cmake = withoutComments(readText('CMakeLists.txt'));
  assert.match(cmake, /sources\.gypi/, 'CMakeLists.txt reads native/sources.gypi');
  assert.match(cmake, /string\s*\(\s*JSON/i, 'CMakeLists.txt parses it as JSON');
  assert.not.match(cmake, /file\s*\(\s*GLOB/i, 'CMakeLists.txt uses no globs');
  assert.not.match(cmake, /native\/[\w/]+\.(cpp|cu)\b/, 'CMakeLists.txt lists no native source itself');
});

List('ISA kernel files include only search_kernel.hpp, <immintrin.h> and plain C headers', () => {
  const v = vars();
  // Headers with inline C++ functions (<algorithm>, <vector>, ...) could have an AVX-512 copy
  // picked by the linker for scalar callers; these define types and macros only.
  const allowed = /^(<immintrin\.h>|<cstdint>|<cstddef>|<stdint\.h>|<stddef\.h>|"[\w/]*_kernel\.hpp")$/;
  const problems: string[] = [];
  for (const file of [...v.vlk_avx2_sources, ...v.vlk_avx512_sources]) {
    for (const m of readText(file).matchAll(/^\s*#\s*include\s+(\S+)/gm)) {
      if (!allowed.test(m[1])) problems.push(`${file}: #include ${m[1]}`);
    }
  }
  assert.equal(problems, []);
});

List.run();

// ---------------------------------------------------------------------------------------------
const Manifest = suite('package.json');

Manifest('no install script, gypfile false, binding.gyp not published, prebuilds shipped', () => {
  const pkg = JSON.parse(readText('package.json'));
  for (const script of ['install', 'preinstall', 'postinstall']) {
    assert.is(pkg.scripts?.[script], undefined, `scripts.${script}`);
  }
  assert.is(pkg.gypfile, false);
  assert.ok(pkg.files.includes('prebuilds/') || pkg.files.includes('prebuilds'), 'files has prebuilds');
  assert.not.ok(pkg.files.some((f: string) => /binding\.gyp|^native/.test(f)), 'files has no binding.gyp or native sources');
  assert.ok(pkg.engines.node.includes('20.9'), 'engines node >= 20.9');
});

Manifest('exports map: types first under import and require', () => {
  const pkg = JSON.parse(readText('package.json'));
  const root = pkg.exports['.'];
  for (const cond of ['import', 'require']) {
    assert.is(Object.keys(root[cond])[0], 'types', `${cond}: types first`);
    assert.ok(existsSync(join(repoRoot, root[cond].types)), `${cond} types file built`);
    assert.ok(existsSync(join(repoRoot, root[cond].default)), `${cond} entry built`);
  }
});

Manifest.run();
