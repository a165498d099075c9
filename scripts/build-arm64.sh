#!/usr/bin/env bash
# linux-arm64 cross build (Debian's aarch64 toolchain): compiles the C++ core tests with the NEON
# kernels (CMake, cmake/aarch64-linux-gnu.cmake, into build-arm64/) and runs them under qemu-aarch64.
# With --addon it also cross-builds the Node addon (node-gyp --arch=arm64, in a scratch copy so the
# x64 build/ stays) into prebuilds/linux-arm64/ and checks its glibc floor.
# Usage: scripts/build-arm64.sh [--addon] [test filter ...]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
prefix="${VLK_CROSS_PREFIX:-aarch64-linux-gnu-}"
sysroot="${VLK_CROSS_SYSROOT:-/usr/aarch64-linux-gnu}"
jobs="$(nproc 2>/dev/null || echo 2)"

addon=0
if [[ "${1:-}" == "--addon" ]]; then
  addon=1
  shift
fi

qemu="$(command -v qemu-aarch64 || command -v qemu-aarch64-static || true)"
missing=()
command -v "${prefix}g++" >/dev/null || missing+=("${prefix}g++ (apt-get install g++-aarch64-linux-gnu)")
[[ -n "$qemu" ]] || missing+=("qemu-aarch64 (apt-get install qemu-user)")
[[ -d "$sysroot/lib" ]] || missing+=("$sysroot/lib (the aarch64 libc, installed with g++-aarch64-linux-gnu)")
if (( ${#missing[@]} > 0 )); then
  printf 'build-arm64: missing %s\n' "${missing[@]}" >&2
  exit 1
fi

echo "cross  $("${prefix}g++" -dumpfullversion), $("$qemu" --version | head -n 1)"
cmake -S . -B build-arm64 -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-linux-gnu.cmake" \
  -DVLK_CROSS_PREFIX="$prefix" -DVLK_CROSS_SYSROOT="$sysroot"
cmake --build build-arm64 -j"$jobs" --target vlk_core_tests
file_out="$(file -b build-arm64/vlk_core_tests 2>/dev/null || true)"
echo "built  build-arm64/vlk_core_tests: ${file_out:-aarch64 ELF}"

if (( addon )); then
  # node-gyp writes build/ in the folder it runs in: a scratch copy keeps the x64 build intact.
  scratch="$(mktemp -d "${TMPDIR:-/tmp}/vlk-arm64-addon.XXXXXX")"
  trap 'rm -rf "$scratch"' EXIT
  cp -r binding.gyp package.json native "$scratch/"
  ln -s "$PWD/node_modules" "$scratch/node_modules"
  (
    cd "$scratch"
    CC="${prefix}gcc" CXX="${prefix}g++" LINK="${prefix}g++" AR="${prefix}ar" \
      npx node-gyp rebuild --arch=arm64 -j "$jobs" >node-gyp.log 2>&1 || { tail -n 40 node-gyp.log >&2; exit 1; }
  )
  mkdir -p prebuilds/linux-arm64
  "${prefix}strip" --strip-unneeded -o prebuilds/linux-arm64/vlkernels.glibc.node "$scratch/build/Release/vlkernels.node"
  echo "built  prebuilds/linux-arm64/vlkernels.glibc.node ($(stat -c %s prebuilds/linux-arm64/vlkernels.glibc.node) bytes)"
  node scripts/check-glibc.mjs prebuilds/linux-arm64/vlkernels.glibc.node
fi

# The test binary's own last line ("N passed, N failed") ends the output.
echo "running the core tests under $qemu -L $sysroot"
"$qemu" -L "$sysroot" build-arm64/vlk_core_tests "$@"
