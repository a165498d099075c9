#!/usr/bin/env bash
# Packs what the device machine lacks into .device/ (git-ignored), for bench/gpu/run.sh. Run it here,
# on a machine with node and a built checkout (npm ci, or at least npm run build:ts), before the device
# call; then carry [".device"] (see bench/gpu/README.md). The device machine has no Node.js and no
# network, and the carry is at most 8 paths and 64 MiB, so instead of node_modules (about 100 MB) it
# gets:
#   .device/node.xz              this machine's node binary (xz -9; about 24 MB)
#   .device/node-include.tar.xz  the four Node-API headers (node_api.h ...), for the CMake addon build
#   .device/node_modules.tar.xz  node-addon-api, node-gyp-build, tsx (+ esbuild), uvu and their deps
#   .device/dist.tar.xz          dist/ (the compiled lib/ the tests and the bench load)
#   .device/pack-info.txt        what was packed, from where, when
# node.xz is rebuilt only when the node binary changes; the rest every time (a few seconds).
#
#   bash bench/gpu/pack.sh            # VLK_PACK_EXTRA="pkg ..." adds npm packages (and their deps)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
out=.device
mkdir -p "$out"

node_bin=$(node -p process.execPath)
node_ver=$(node --version)
log() { printf '[pack.sh %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# dist/ must be the compiled current lib/: a stale one would test old code on the GPU.
if [[ ! -f dist/cjs/index.js ]]; then
  echo "pack.sh: dist/cjs/index.js is missing: run npm run build:ts first" >&2
  exit 1
fi
stale=$(find lib -name '*.ts' -newer dist/cjs/index.js | head -n 5)
if [[ -n $stale ]]; then
  echo "pack.sh: dist/ is older than lib/ ($(echo "$stale" | tr '\n' ' ')): run npm run build:ts first" >&2
  exit 1
fi

# 1. node (xz -9 takes about 45 s on 2 cores; skipped when the packed binary is the same)
stamp="$node_bin $node_ver $(stat -c '%s %Y' "$node_bin")"
if [[ -s $out/node.xz && -f $out/node.stamp && "$(cat "$out/node.stamp")" == "$stamp" ]]; then
  log "node.xz is up to date ($node_ver)"
else
  log "compressing $node_bin ($node_ver) -> $out/node.xz"
  xz -9 -T0 <"$node_bin" >"$out/node.xz.tmp"
  mv "$out/node.xz.tmp" "$out/node.xz"
  echo "$stamp" >"$out/node.stamp"
fi

# 2. Node-API headers: next to the binary (<prefix>/include/node), else node_modules/node-api-headers
inc=$(node -p "require('path').resolve(process.execPath, '..', '..', 'include', 'node')")
[[ -f $inc/node_api.h ]] || inc=node_modules/node-api-headers/include
headers=(node_api.h node_api_types.h js_native_api.h js_native_api_types.h)
for h in "${headers[@]}"; do
  [[ -f $inc/$h ]] || {
    echo "pack.sh: $inc/$h not found (install node's headers or npm ci for node-api-headers)" >&2
    exit 1
  }
done
tar -C "$inc" -cJf "$out/node-include.tar.xz" "${headers[@]}"

# 3. node_modules: the dependency closure of what the build, the tests and the bench load
roots="node-gyp-build node-addon-api tsx uvu ${VLK_PACK_EXTRA:-}"
# shellcheck disable=SC2016 # the single-quoted text is JavaScript
mapfile -t mods < <(ROOTS="$roots" node -e '
  const fs = require("fs"), path = require("path");
  const seen = new Set();
  const find = (name, from) => {
    for (let d = from; ; d = path.dirname(d)) {
      const c = path.join(d, "node_modules", name);
      if (fs.existsSync(path.join(c, "package.json"))) return c;
      if (d === path.dirname(d)) return null;
    }
  };
  const walk = (dir) => {
    if (seen.has(dir)) return;
    seen.add(dir);
    const p = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
    for (const dep of [...Object.keys(p.dependencies || {}), ...Object.keys(p.optionalDependencies || {})]) {
      const d = find(dep, dir);
      if (d) walk(d);
    }
  };
  for (const r of process.env.ROOTS.split(/\s+/).filter(Boolean)) {
    const d = find(r, process.cwd());
    if (!d) { console.error(`pack.sh: node_modules/${r} is missing (npm ci)`); process.exit(1); }
    walk(d);
  }
  for (const d of seen) console.log(path.relative(process.cwd(), d));
')
if ((${#mods[@]} == 0)); then
  echo "pack.sh: found no node_modules to pack" >&2
  exit 1
fi
tar -cJf "$out/node_modules.tar.xz" "${mods[@]}"

# 4. dist/
tar -cJf "$out/dist.tar.xz" dist

{
  echo "packed $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n): node $node_ver from $node_bin"
  echo "headers from $inc; modules: ${mods[*]}"
  echo "dist/ built $(date -u -r dist/cjs/index.js +%Y-%m-%dT%H:%M:%SZ)"
} >"$out/pack-info.txt"

rm -rf "$out/node" # an unpacked node from a local test run of run.sh must not be carried
total=$(du -cb "$out"/node.xz "$out"/*.tar.xz "$out"/*.txt | tail -n 1 | cut -f 1)
du -h "$out"/node.xz "$out"/*.tar.xz
log "$out: $((total / 1048576)) MiB in all (the carry limit is 64 MiB)"
if ((total > 60 * 1048576)); then
  echo "pack.sh: $out is over 60 MiB: too close to the 64 MiB carry limit" >&2
  exit 1
fi
log "now: the device tool with carry [\".device\"] and command \"bash bench/gpu/run.sh\""
