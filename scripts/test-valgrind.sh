#!/usr/bin/env bash
# valgrind memcheck of a representative subset of the C++ core tests, built without sanitizers
# (build-cmake/, as CI builds it): one run per filter; definite leaks and memory errors fail it.
# Usage: scripts/test-valgrind.sh [--ci | filter ...]   (default: search, the gemm checks, flat_index and
# block_cache; gemm_rate_combiner_sized, a 4-GFLOP timing print, alone takes about 10 minutes under valgrind)
# VLK_CORE_TESTS=<binary> checks an existing build instead of building build-cmake/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
jobs="$(nproc 2>/dev/null || echo 2)"
if ! command -v valgrind >/dev/null; then
  echo "test-valgrind: valgrind not found (apt-get install valgrind)" >&2
  exit 1
fi
filters=("$@")
if ((${#filters[@]} == 0)); then filters=(search gemm_matches gemm_rejects gemm_beta flat_index block_cache); fi
# --ci: the subset CI runs (a few minutes on 2 cores): the index and its file format, the caches,
# the safetensors reader, merge / rerank / filters / errors of search, the size checks.
if [[ "${filters[0]}" == --ci ]]; then
  filters=(flat_index index_file block_cache cached_array safetensors checked_ saturating_ check_alloc run_guarded block_acquire
    merge_top_k rerank filter_ planted_ties error_ gemm_rejects gemm_beta combiner token_max info_nce two_hop prototype
    concurrent_searches parallel_for threads_1_2_5 strided inputs_never_written cosine_zero npy_ vecs_)
fi

bin="${VLK_CORE_TESTS:-}"
if [[ -z "$bin" ]]; then
  cmake -S . -B build-cmake -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build-cmake -j"$jobs" --target vlk_core_tests
  bin=build-cmake/vlk_core_tests
fi
echo "valgrind $(valgrind --version | sed 's/^valgrind-//') on $bin"

# valgrind's synthetic CPU has no AVX-512, so the core picks its AVX2 (or scalar) kernels from
# cpuid here; the AVX-512 kernels are covered by scripts/test-sanitizers.sh instead. The global
# pool's worker threads still run at exit: their thread stacks show as "possibly lost", not an error.
status=0
for f in "${filters[@]}"; do
  started=$SECONDS
  printf '\n=== valgrind memcheck: %s %s\n' "$bin" "$f"
  if valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 \
      --track-origins=yes --fair-sched=yes "$bin" "$f"; then
    echo "$f: clean ($((SECONDS - started)) s)"
  else
    echo "$f: valgrind reported errors or a test failed ($((SECONDS - started)) s)" >&2
    status=1
  fi
done
exit "$status"
