#!/usr/bin/env bash
# C++ core tests under sanitizers (CMake -DVLK_SANITIZE): ASan + UBSan in build-asan-core/, TSan in
# build-tsan-core/, each running vlk_core_tests; any sanitizer report fails the run (exit 1).
# Usage: scripts/test-sanitizers.sh [address|thread|all] [test filter]   (default: all, every test)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
jobs="$(nproc 2>/dev/null || echo 2)"
which="${1:-all}"
filter=("${@:2}")
case "$which" in
  address | thread | all) ;;
  *) echo "test-sanitizers: unknown sanitizer '$which' (address, thread or all)" >&2; exit 2 ;;
esac

# The tests' own leaks are reported (LeakSanitizer is part of ASan); UBSan stops at the first report
# (the build also has -fno-sanitize-recover=undefined). TSan stops at the first race.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}"

status=0
run_one() {
  local sanitizer="$1" dir="$2"
  local started=$SECONDS log
  printf '\n=== %s: %s/vlk_core_tests\n' "$sanitizer" "$dir"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DVLK_SANITIZE="$sanitizer" >/dev/null
  cmake --build "$dir" -j"$jobs" --target vlk_core_tests
  local built=$SECONDS
  log="$dir/vlk_core_tests.log"
  set +e
  "./$dir/vlk_core_tests" "${filter[@]}" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  # A report whose process still exits 0 (a recoverable check) fails the run too.
  if grep -qE 'ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error:' "$log"; then
    echo "$sanitizer: sanitizer report(s) in $log" >&2
    rc=1
  fi
  echo "$sanitizer: exit $rc, build $((built - started)) s, tests $((SECONDS - built)) s"
  if ((rc != 0)); then status=1; fi
}

if [[ "$which" == address || "$which" == all ]]; then run_one address build-asan-core; fi
if [[ "$which" == thread || "$which" == all ]]; then run_one thread build-tsan-core; fi
exit "$status"
