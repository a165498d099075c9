#!/usr/bin/env bash
# Proof on a real GPU, in one device call (see bench/gpu/README.md): unpacks the carried Node
# (.device/, made by bench/gpu/pack.sh), prints the toolchain, builds the CUDA addon
# (build/Release/vlkernels_cuda.node), the CPU addon (build/Release/vlkernels.node, the loader's
# fallback) and the C++ tests with CMake, runs the C++ core tests, vlk_cuda_smoke and
# `node test/run.mjs cuda`, then bench/gpu/gpu.bench.mjs (vlkernels vs PyTorch on W1 and the large
# case; results to bench/results/ and, when $OUT is set, to $OUT). Every line is timestamped; the
# last lines are a summary and the bars.
#
#   bash bench/gpu/run.sh [--skip-build] [--skip-tests] [--no-bench] [gpu.bench.mjs options...]
#
# Environment: VLK_GPU_BUDGET_S (whole run, default 570 s), VLK_CUDA_ARCHS (default: the GPU's
# compute capability, e.g. 90-real), VLK_GPU_BUILD_DIR (default build-gpu; the CPU addon goes to
# <dir>-cpu), VLK_GPU_ADDON_DIR (where the .node files go, default build/Release: the loader's
# place), VLK_GPU_UNPACK=1 (unpack .device/ even where a node is installed), JOBS.
# Exit status: 0 all steps ok and every bar PASS; 4 a bar FAIL/SKIP; 3 no usable CUDA device;
# 2 build failed; 1 a test or check failed.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
root=$PWD
start=$SECONDS
budget=${VLK_GPU_BUDGET_S:-570}
build_dir=${VLK_GPU_BUILD_DIR:-build-gpu}
cpu_build_dir=${build_dir}-cpu
addon_dir=${VLK_GPU_ADDON_DIR:-$root/build/Release}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 8)}

skip_build=0
skip_tests=0
run_bench=1
bench_args=()
while (($#)); do
  case $1 in
    --skip-build) skip_build=1 ;;
    --skip-tests) skip_tests=1 ;;
    --no-bench) run_bench=0 ;;
    -h | --help)
      awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
      exit 0
      ;;
    *) bench_args+=("$1") ;;
  esac
  shift
done

log() { printf '[run.sh %s +%3ds] %s\n' "$(date -u +%H:%M:%S)" "$((SECONDS - start))" "$*"; }
left() { echo $((budget - (SECONDS - start))); }
# cap SECONDS: the smaller of SECONDS and what is left of the budget minus a reserve
cap() {
  local want=$1 reserve=${2:-20} l
  l=$(($(left) - reserve))
  ((l < 5)) && l=5
  ((want < l)) && l=$want
  echo "$l"
}

declare -a summary=()
note() { summary+=("$1"); }

main() {
  # ---- 1. Node: the carried binary, headers, node_modules subset and dist/ ----------------------------
  log "==> node"
  unpack=${VLK_GPU_UNPACK:-0}
  if ! command -v node >/dev/null 2>&1 || [[ ! -d node_modules/node-addon-api ]]; then unpack=1; fi
  if ((unpack)); then
    if [[ ! -s .device/node.xz ]]; then
      log "no node on this machine and no .device/node.xz: run bash bench/gpu/pack.sh locally and carry .device (see bench/gpu/README.md)"
      exit 2
    fi
    mkdir -p .device/node/bin .device/node/include/node
    if ! xz -dc .device/node.xz >.device/node/bin/node.tmp; then
      log "could not unpack .device/node.xz"
      exit 2
    fi
    chmod +x .device/node/bin/node.tmp
    mv .device/node/bin/node.tmp .device/node/bin/node
    [[ -s .device/node-include.tar.xz ]] && tar -C .device/node/include/node -xJf .device/node-include.tar.xz
    [[ -s .device/node_modules.tar.xz ]] && tar -xJf .device/node_modules.tar.xz
    if [[ -s .device/dist.tar.xz ]]; then
      rm -rf dist
      tar -xJf .device/dist.tar.xz
    fi
    export PATH="$root/.device/node/bin:$PATH"
    [[ -f .device/pack-info.txt ]] && sed 's/^/  pack: /' .device/pack-info.txt
  fi
  if ! node_bin=$(command -v node) || ! node --version >/dev/null 2>&1; then
    log "node does not run here (libc?): $(node --version 2>&1 | head -n 1)"
    exit 2
  fi
  for f in dist/cjs/index.js node_modules/node-addon-api/package.json node_modules/tsx/package.json node_modules/uvu/package.json; do
    [[ -e $f ]] || log "warning: $f is missing (bench/gpu/pack.sh packs it)"
  done

  # ---- 2. toolchain and GPU ------------------------------------------------------------------------------
  log "==> versions"
  nvcc_bin=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  gpu=0
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then gpu=1; fi
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi 2>&1 | head -n 20
    nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total,clocks.max.sm,power.limit --format=csv 2>&1
  else
    echo "nvidia-smi: not found"
  fi
  if [[ -x $nvcc_bin ]]; then "$nvcc_bin" --version | tail -n 2; else echo "nvcc: not found"; fi
  echo "cmake: $(cmake --version 2>/dev/null | head -n 1)"
  echo "c++:   $(c++ --version 2>/dev/null | head -n 1)"
  echo "node:  $node_bin $(node --version) (Node-API $(node -p process.versions.napi))"
  python3 -c 'import sys, torch; print("torch:", torch.__version__, "CUDA", torch.version.cuda, "python", sys.version.split()[0], "| cuda available:", torch.cuda.is_available(), "|", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")' 2>&1 | tail -n 1
  echo "cpu:   $(grep -m 1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//') x $(nproc)"
  ((gpu)) || log "warning: no GPU listed by nvidia-smi; the CUDA tests skip and the bench stops with exit 3"

  # ---- 3. build -------------------------------------------------------------------------------------------
  status=0
  if ((skip_build)); then
    log "==> build skipped (--skip-build)"
  else
    arch=${VLK_CUDA_ARCHS:-}
    if [[ -z $arch ]] && ((gpu)); then
      cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
      [[ $cc =~ ^[0-9]+$ ]] && arch="${cc}-real"
    fi
    arch=${arch:-90-real}
    gen=()
    if command -v ninja >/dev/null 2>&1 && [[ ! -f $build_dir/CMakeCache.txt ]]; then gen=(-G Ninja); fi
    log "==> build: CUDA addon + C++ tests in $build_dir (architectures $arch, $jobs jobs)"
    t=$SECONDS
    if timeout -k 10 "$(cap 60)" cmake -S . -B "$build_dir" ${gen[@]+"${gen[@]}"} -DCMAKE_BUILD_TYPE=Release \
      -DVLK_CUDA=ON -DVLK_BUILD_ADDON=ON -DVLK_BUILD_TESTS=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" \
      -DVLK_NODE="$node_bin" -DVLK_CUDA_ADDON_DIR="$addon_dir" &&
      timeout -k 10 "$(cap 330 120)" cmake --build "$build_dir" -j "$jobs"; then
      log "<== CUDA build ok in $((SECONDS - t)) s"
      note "build (CUDA, $arch): ok in $((SECONDS - t)) s -> $addon_dir/vlkernels_cuda.node"
    else
      status=2
      log "<== CUDA build FAILED after $((SECONDS - t)) s"
      note "build (CUDA, $arch): FAILED"
    fi
    if ((status == 0)); then
      gen=()
      if command -v ninja >/dev/null 2>&1 && [[ ! -f $cpu_build_dir/CMakeCache.txt ]]; then gen=(-G Ninja); fi
      log "==> build: CPU addon (the loader's fallback) in $cpu_build_dir"
      t=$SECONDS
      if timeout -k 10 "$(cap 60)" cmake -S . -B "$cpu_build_dir" ${gen[@]+"${gen[@]}"} -DCMAKE_BUILD_TYPE=Release \
        -DVLK_BUILD_ADDON=ON -DVLK_BUILD_TESTS=OFF -DVLK_NODE="$node_bin" &&
        timeout -k 10 "$(cap 200 120)" cmake --build "$cpu_build_dir" -j "$jobs" --target vlkernels &&
        mkdir -p "$addon_dir" && cp "$cpu_build_dir/vlkernels.node" "$addon_dir/vlkernels.node"; then
        log "<== CPU addon ok in $((SECONDS - t)) s"
        note "build (CPU addon): ok in $((SECONDS - t)) s -> $addon_dir/vlkernels.node"
      else
        status=2
        log "<== CPU addon build FAILED"
        note "build (CPU addon): FAILED"
      fi
    fi
    ls -la "$addon_dir"/*.node 2>/dev/null
  fi

  # ---- 4. tests -------------------------------------------------------------------------------------------
  run_step() { # name cap-seconds command...: runs, logs, records; returns the command's status
    local name=$1 secs=$2 t=$SECONDS rc
    shift 2
    log "==> $name"
    timeout -k 10 "$(cap "$secs" 60)" "$@"
    rc=$?
    if ((rc == 0)); then
      log "<== $name: ok ($((SECONDS - t)) s)"
      note "$name: ok ($((SECONDS - t)) s)"
    else
      log "<== $name: FAILED, status $rc ($((SECONDS - t)) s)"
      note "$name: FAILED (status $rc)"
    fi
    return "$rc"
  }
  if ((status == 2)); then
    log "build failed: no tests, no bench"
  elif ((skip_tests)); then
    log "==> tests skipped (--skip-tests)"
  else
    if [[ -x $build_dir/vlk_core_tests ]]; then
      run_step "C++ core tests ($build_dir/vlk_core_tests)" 120 "$build_dir/vlk_core_tests" || status=1
    else
      note "C++ core tests: not built"
    fi
    if [[ -x $build_dir/vlk_cuda_smoke ]]; then
      run_step "CUDA smoke ($build_dir/vlk_cuda_smoke)" 90 "$build_dir/vlk_cuda_smoke" || status=1
    else
      note "CUDA smoke: $build_dir/vlk_cuda_smoke not built"
    fi
    run_step "CUDA tests (node test/run.mjs cuda)" 250 \
      env VLK_TEST_TIMEOUT_MS=$((1000 * $(cap 240 90))) node test/run.mjs cuda || status=1
  fi

  # ---- 5. bench -------------------------------------------------------------------------------------------
  bench_rc=-1
  bench_log=$(mktemp)
  mkdir -p "$build_dir/work"
  marker=$build_dir/.gpu-run-start
  touch "$marker"
  if ((status == 2)); then
    :
  elif ((run_bench)); then
    deadline=$(($(left) - 25))
    if ((deadline < 60)); then
      log "==> bench skipped: only $(left) s left"
      note "bench: skipped, out of time"
    else
      log "==> bench: node bench/gpu/gpu.bench.mjs --deadline-s $deadline ${bench_args[*]-}"
      t=$SECONDS
      timeout -k 10 "$((deadline + 15))" node bench/gpu/gpu.bench.mjs --deadline-s "$deadline" --work "$build_dir/work" \
        ${bench_args[@]+"${bench_args[@]}"} 2>&1 | tee "$bench_log"
      bench_rc=${PIPESTATUS[0]}
      log "<== bench: status $bench_rc ($((SECONDS - t)) s)"
      case $bench_rc in
        0) note "bench: ok, every bar PASS" ;;
        3) note "bench: no usable CUDA device ($(grep -m 1 '^no CUDA device' "$bench_log" || echo 'see above'))" ;;
        4) note "bench: ran; a bar is FAIL or SKIP" ;;
        *) note "bench: FAILED (status $bench_rc)" ;;
      esac
    fi
  fi

  # ---- 6. results to $OUT, summary --------------------------------------------------------------------
  if [[ -n ${OUT:-} ]]; then
    mkdir -p "$OUT/results"
    find bench/results "$build_dir/work" -maxdepth 1 \( -name 'gpu-search-*' -o -name torch_peer.json \) \
      -newer "$marker" -exec cp {} "$OUT/results/" \;
    log "results copied to \$OUT/results: $(find "$OUT/results" -type f -printf '%f ')"
  fi
  log "==> summary ($((SECONDS - start)) s of the ${budget} s budget)"
  for s in ${summary[@]+"${summary[@]}"}; do echo "  $s"; done
  grep -E '^(PASS|FAIL|SKIP|INFO) ' "$bench_log" | sed 's/^/  /'
  rm -f "$bench_log"

  if ((status != 0)); then exit "$status"; fi
  case $bench_rc in
    -1 | 0) exit 0 ;;
    *) exit "$bench_rc" ;;
  esac
}

# With $OUT (the device tool's folder), a copy of everything printed goes to $OUT/run.log.
if [[ -n ${OUT:-} ]]; then
  mkdir -p "$OUT"
  main 2>&1 | tee -a "$OUT/run.log"
  exit "${PIPESTATUS[0]}"
fi
main
