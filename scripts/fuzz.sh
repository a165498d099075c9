#!/usr/bin/env bash
# libFuzzer runs of the targets in test/fuzz (vlk_fuzz_sources in native/sources.gypi): builds them
# with clang (CMake -DVLK_FUZZ=ON: libFuzzer + ASan + UBSan) in build-fuzz/, then runs each for the
# given time, starting from the committed seeds (test/fuzz/corpus/<target>, read only) and the
# units earlier runs found (build-fuzz/corpus/<target>) and the inputs that once failed
# (test/fuzz/regressions/<target>). Crashes, leaks, sanitizer reports and
# broken invariants are written to build-fuzz/artifacts/ and fail the run (exit 1). Prints, per
# target, the executions, executions per second, edges covered and the corpus size.
# Usage: scripts/fuzz.sh [seconds per target (default 10)] [target ...]
#        scripts/fuzz.sh --repro <target> <input file>   (rerun one input, e.g. a crash artifact)
# Long runs (the issue note's figures): scripts/fuzz.sh 600
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
out="$root/build-fuzz"
jobs="$(nproc 2>/dev/null || echo 2)"

cxx="${VLK_FUZZ_CXX:-$(command -v clang++ || true)}"
if [[ -z "$cxx" ]]; then
  echo "fuzz: clang++ not found (apt-get install clang); libFuzzer ships with clang" >&2
  exit 3
fi
cc="${cxx%++}"
[[ -x "$cc" ]] || cc="$(command -v clang || echo clang)"

started=$SECONDS
mkdir -p "$out"
cmake -S . -B "$out" -DCMAKE_BUILD_TYPE=Release -DVLK_FUZZ=ON -DVLK_BUILD_TESTS=OFF \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" >"$out/configure.log" 2>&1 ||
  { tail -n 30 "$out/configure.log" >&2; exit 1; }
cmake --build "$out" -j"$jobs" --target vlk_fuzz >"$out/build.log" 2>&1 || { tail -n 40 "$out/build.log" >&2; exit 1; }
echo "fuzz: built the targets in $out ($((SECONDS - started)) s, $("$cxx" --version | head -n 1))"

all=()
while IFS= read -r src; do all+=("$(basename "$src" .cpp)"); done < <(
  node -e 'console.log(JSON.parse(require("fs").readFileSync("native/sources.gypi", "utf8")).variables.vlk_fuzz_sources.join("\n"))')

# Leaks are reported at exit of each run; UBSan stops at the first report.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

if [[ "${1:-}" == "--repro" ]]; then
  [[ $# -eq 3 ]] || { echo "usage: scripts/fuzz.sh --repro <target> <input file>" >&2; exit 2; }
  exec "$out/$2" "$3"
fi

seconds="${1:-10}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || ((seconds < 1)); then
  echo "fuzz: seconds per target must be a positive integer, got '$seconds'" >&2
  exit 2
fi
targets=("${@:2}")
((${#targets[@]})) || targets=("${all[@]}")

mkdir -p "$out/artifacts"
status=0
printf '\n%-18s %12s %9s %7s %7s %8s  %s\n' target executions exec/s edges features corpus result
for t in "${targets[@]}"; do
  if [[ ! -x "$out/$t" ]]; then
    echo "fuzz: unknown target '$t' (known: ${all[*]})" >&2
    exit 2
  fi
  mkdir -p "$out/corpus/$t"
  log="$out/$t.log"
  set +e
  seeds=("test/fuzz/corpus/$t")
  # Inputs that once failed (test/fuzz/regressions/<target>/, each fixed and covered by a test).
  [[ -d "test/fuzz/regressions/$t" ]] && seeds+=("test/fuzz/regressions/$t")
  "$out/$t" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$out/artifacts/$t-" "$out/corpus/$t" "${seeds[@]}" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  edges=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  feats=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
  result=ok
  if ((rc != 0)) || grep -qE 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error:|invariant failed' "$log"; then
    result="FAILED (exit $rc, see $log and $out/artifacts/)"
    status=1
  fi
  printf '%-18s %12s %9s %7s %7s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${edges:-?}" "${feats:-?}" "${corp:-?}" "$result"
done
echo "fuzz: ${#targets[@]} target(s), ${seconds} s each, exit $status ($((SECONDS - started)) s in all)"
exit "$status"
