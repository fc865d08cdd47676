#!/usr/bin/env bash
# Checks the example configs as shipped, before any real secret exists:
#
#   bash examples/check.sh                 # every examples/*.yaml
#   bash examples/check.sh sidecar.yaml    # one of them
#
# Each config is copied into a temporary folder beside placeholder files for every `<key>File`
# it names (random values, never real secrets), `${NAME}` variables get placeholders too (digits
# for an `..._APP_ID`), and `countersign check-config` runs on the copy. What it checks is the
# config itself: keys, values, durations, listeners, upstreams. On a real deployment run
# `countersign check-config --config /etc/countersign/config.yaml` with the Secret mounted.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cli=("$root/node_modules/.bin/tsx" "$root/src/cli/main.ts")
[ -f "$root/dist/cli/main.js" ] && cli=(node "$root/dist/cli/main.js")
cd "$here"
configs=("$@")
((${#configs[@]})) || configs=(*.yaml)
status=0
for name in "${configs[@]}"; do
  dir=$(mktemp -d)
  cp "$here/$name" "$dir/config.yaml"
  # Every `<key>File: path` the config names gets a placeholder file at that path.
  while read -r file; do
    mkdir -p "$(dirname "$dir/$file")"
    case "$file" in
      *redis-url*) printf 'redis://:placeholder-%s@redis.example:6379/0\n' "$RANDOM" >"$dir/$file" ;;
      *store-keys/*) head -c 32 /dev/urandom | base64 >"$dir/$file" ;;   # a store key: 32 bytes, base64
      *) printf 'placeholder-%s%s\n' "$RANDOM" "$RANDOM" >"$dir/$file" ;;
    esac
  done < <(grep -oE '^[[:space:]-]*[A-Za-z]+File:[[:space:]]*[^[:space:]#]+' "$dir/config.yaml" | sed -E 's/^[^:]*:[[:space:]]*//')
  vars=()
  while read -r var; do
    [ -n "$var" ] || continue
    case "$var" in *APP_ID) vars+=("$var=3340612437") ;; *) vars+=("$var=placeholder-$RANDOM") ;; esac
  done < <(grep -oE '\$\{[A-Za-z_][A-Za-z0-9_]*\}' "$dir/config.yaml" | tr -d '${}' | sort -u)
  echo "== examples/$name"
  if env ${vars[@]+"${vars[@]}"} "${cli[@]}" check-config --config "$dir/config.yaml"; then :; else status=2; fi
  rm -rf "$dir"
done
exit "$status"
