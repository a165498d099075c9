// glibc floor (scripts/check-glibc.mjs, native/compat/glibc_floor.*): the built addon needs no
// GLIBC above 2.28 and no GLIBCXX above 3.4.25; a lowered floor names the offending symbols; a
// fixture built with and without the floor layer shows what it changes. Linux glibc only.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './helpers/paths';

const script = join(repoRoot, 'scripts', 'check-glibc.mjs');
const glibcRuntime = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header
  ?.glibcVersionRuntime;
const onGlibc = process.platform === 'linux' && typeof glibcRuntime === 'string';
const haveReadelf = spawnSync('readelf', ['--version']).status === 0;
const baseVersion = process.arch === 'arm64' ? 'GLIBC_2.17' : 'GLIBC_2.2.5';

function checkGlibc(...args: string[]) {
  const r = spawnSync(process.execPath, [script, ...args], { cwd: repoRoot, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** The addon binaries a checkout has: build/Release and glibc prebuilds for this platform. */
function addonFiles(): string[] {
  const out: string[] = [];
  const rel = join(repoRoot, 'build', 'Release', 'vlkernels.node');
  if (existsSync(rel)) out.push(rel);
  const pre = join(repoRoot, 'prebuilds', `linux-${process.arch}`);
  if (existsSync(pre)) for (const f of readdirSync(pre)) if (f.endsWith('.node') && !f.includes('.musl.')) out.push(join(pre, f));
  return out;
}

/** Highest version per namespace from the check's "highest GLIBC a, GLIBCXX b, CXXABI c" line. */
function highest(out: string): Record<string, string> {
  const m = /highest GLIBC (\S+), GLIBCXX (\S+), CXXABI (\S+)/.exec(out);
  assert.ok(m, `a "highest" line in:\n${out}`);
  return { GLIBC: m![1], GLIBCXX: m![2], CXXABI: m![3] };
}

const atMost = (v: string, max: string) => {
  const a = v.split('.').map(Number);
  const b = max.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i += 1) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) < (b[i] ?? 0);
  return true;
};

const Check = suite('check-glibc');
const skip = !onGlibc ? `not a glibc Linux (${process.platform})` : !haveReadelf ? 'readelf (binutils) not installed' : '';
if (skip) console.log(`check-glibc: skipped (${skip})`);

Check('usage errors: bad version exits 2, missing and non-ELF files fail by name', () => {
  if (skip) return;
  const bad = checkGlibc('--glibc', 'two');
  assert.is(bad.status, 2);
  assert.match(bad.out, /--glibc needs a version like 2\.28, got two/);
  const missing = checkGlibc(join(repoRoot, 'no-such.node'));
  assert.is(missing.status, 1);
  assert.match(missing.out, /FAIL no-such\.node: no such file/);
  const notElf = checkGlibc(join(repoRoot, 'package.json'));
  assert.is(notElf.status, 1);
  assert.match(notElf.out, /FAIL package\.json: not an ELF file/);
});

Check('the built addon is within GLIBC 2.28 / GLIBCXX 3.4.25 / CXXABI 1.3.11', () => {
  if (skip) return;
  const files = addonFiles();
  assert.ok(files.length > 0, 'build/Release/vlkernels.node or a prebuild exists');
  for (const file of files) {
    const r = checkGlibc(file);
    assert.is(r.status, 0, r.out);
    const h = highest(r.out);
    assert.ok(atMost(h.GLIBC, '2.28'), `${file}: GLIBC ${h.GLIBC}`);
    assert.ok(h.GLIBCXX === '-' || atMost(h.GLIBCXX, '3.4.25'), `${file}: GLIBCXX ${h.GLIBCXX}`);
  }
});

Check('a lowered floor fails and names each symbol with its version', () => {
  if (skip) return;
  const file = addonFiles()[0];
  const r = checkGlibc('--glibc', '2.0', '--glibcxx', '3.4.20', file);
  assert.is(r.status, 1, r.out);
  assert.match(r.out, /^FAIL .*needs above the floor \(GLIBC <= 2\.0, GLIBCXX <= 3\.4\.20/m);
  // The floor layer binds dlopen and pow to the base version; libstdc++'s C++11 strings are 3.4.21.
  const base = r.out.split('\n').find((l) => l.trim().startsWith(`${baseVersion} (libc.so.6):`)) ?? '';
  assert.match(base, /\bdlopen\b/, `dlopen listed under ${baseVersion}:\n${r.out}`);
  assert.match(r.out, /GLIBCXX_3\.4\.21 \(libstdc\+\+\.so\.6\): .*basic_string/);
});

// A shared object calling what a newer toolchain versions high: built plainly it needs what the
// toolchain gives (GLIBC_2.34 dlopen on glibc >= 2.34), built with the floor layer it stays within.
Check('fixture: the floor layer turns a failing build into a passing one', () => {
  if (skip) return;
  if (spawnSync('g++', ['--version']).status !== 0) {
    console.log('check-glibc: fixture skipped (no g++)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'vlk-glibc-'));
  try {
    writeFileSync(
      join(dir, 'fixture.cpp'),
      `#include <dlfcn.h>
#include <sys/stat.h>
#include <cmath>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>
extern "C" double vlk_fixture(double x, const char* path, int fd) {
  void* h = dlopen(path, RTLD_LAZY);
  struct stat st;
  const int s = fstat(fd, &st);
  std::vector<double> v(static_cast<size_t>(x));
  auto sp = std::make_shared<int>(1);
  std::mutex m;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(m);
  if (x < -1) cv.wait(lock);
  return std::exp(x) + std::log(x) + std::pow(x, 0.5) + (h != nullptr) + s + v.size() + *sp;
}
`,
    );
    const common = ['-std=c++17', '-O2', '-fPIC', '-shared', '-D_FILE_OFFSET_BITS=64'];
    const plain = spawnSync('g++', [...common, '-o', join(dir, 'plain.so'), join(dir, 'fixture.cpp')], { encoding: 'utf8' });
    assert.is(plain.status, 0, plain.stderr);
    const floored = spawnSync(
      'g++',
      [...common, '-I', join(repoRoot, 'native'), '-include', 'compat/glibc_floor.hpp', '-o', join(dir, 'floor.so'),
        join(dir, 'fixture.cpp'), join(repoRoot, 'native', 'compat', 'glibc_floor.cpp'),
        '-Wl,--no-as-needed', '-l:libdl.so.2', '-Wl,--as-needed'],
      { encoding: 'utf8' },
    );
    assert.is(floored.status, 0, floored.stderr);

    const withFloor = checkGlibc(join(dir, 'floor.so'));
    assert.is(withFloor.status, 0, withFloor.out);
    const plainCheck = checkGlibc(join(dir, 'plain.so'));
    if (atMost(glibcRuntime!, '2.33')) {
      console.log(`check-glibc: glibc ${glibcRuntime} < 2.34, the plain fixture may already be within the floor`);
      return;
    }
    assert.is(plainCheck.status, 1, plainCheck.out);
    assert.match(plainCheck.out, /GLIBC_2\.34 \(libc\.so\.6\): .*\bdlopen\b/);
    assert.match(plainCheck.out, /GLIBC_2\.29 \(libm\.so\.6\): .*\b(exp|log|pow)\b/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Check.run();
