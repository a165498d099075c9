#!/usr/bin/env bash
# The whole JS test suite against an ASan + UBSan build of the addon. node-gyp builds it in
# build-asan/ (binding.gyp and package.json copied there, native/ and node_modules/ linked), so
# build/Release stays the normal build; the loader takes build-asan/build/Release/vlkernels.node
# through node-gyp-build's VLKERNELS_PREBUILD. Any sanitizer report fails the run (exit 1).
# Usage: scripts/test-asan.sh [test file substring ...]   (as node test/run.mjs)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
jobs="$(nproc 2>/dev/null || echo 2)"
out="$root/build-asan"
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"

libasan="$(gcc -print-file-name=libasan.so)"
if [[ ! -e "$libasan" ]]; then
  echo "test-asan: gcc has no libasan.so ($libasan)" >&2
  exit 1
fi

started=$SECONDS
mkdir -p "$out"
cp binding.gyp package.json "$out/"
for link in native node_modules; do
  [[ -L "$out/$link" ]] || ln -s "../$link" "$out/$link"
done
(
  cd "$out"
  # node-gyp's Makefile appends $(CFLAGS)/$(CXXFLAGS)/$(LDFLAGS) to every target's own flags.
  npx node-gyp configure >node-gyp.log 2>&1 || { tail -n 40 node-gyp.log >&2; exit 1; }
  CFLAGS="$flags" CXXFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" \
    npx node-gyp build -j "$jobs" >>node-gyp.log 2>&1 || { tail -n 40 node-gyp.log >&2; exit 1; }
)
addon="$out/build/Release/vlkernels.node"
# grep reads all of ldd's output: with -q it could exit first, and pipefail would then report
# ldd's SIGPIPE as "not linked".
if ! ldd "$addon" | grep libasan >/dev/null; then
  echo "test-asan: $addon is not linked with libasan" >&2
  exit 1
fi
built=$SECONDS
echo "built $addon with $flags ($((built - started)) s)"

# node is not instrumented, so the ASan runtime must be loaded first (LD_PRELOAD). Leak detection is
# off: node itself does not free everything at exit, so LeakSanitizer would report node, not the
# addon (the C++ core tests run with it on: scripts/test-sanitizers.sh). The C++ core tests are
# left to that script (VLK_CORE_TESTS points at nothing here).
log="$out/test-asan.log"
set +e
VLKERNELS_PREBUILD="$out" VLK_CORE_TESTS="$out/no-core-tests" VLK_SANITIZED=asan \
  LD_PRELOAD="$libasan" \
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}" \
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}" \
  VLK_TEST_TIMEOUT_MS="${VLK_TEST_TIMEOUT_MS:-900000}" \
  node test/run.mjs "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if grep -qE 'ERROR: AddressSanitizer|runtime error:' "$log"; then
  echo "test-asan: sanitizer report(s) in $log" >&2
  rc=1
fi
echo "test-asan: exit $rc, build $((built - started)) s, tests $((SECONDS - built)) s"
exit "$rc"
