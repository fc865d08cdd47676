#!/bin/sh
# install-runtime.sh SRC DEST: lay out the container image's /app from a build.
#
# SRC holds the build stage's output: package.json, package-lock.json, dist/ (compiled) and
# grafana/. DEST (new or empty) receives a clean copy of those four and the production
# dependencies only, installed exactly as the lock file pins them (`npm ci`). Install scripts are
# skipped: the package's own `prepare` compiles with TypeScript, a dev dependency, and no
# production dependency has an install script (test/integration/production-layout.test.ts
# checks the lock file for that).
#
# The Dockerfile RUNs this script and the production-layout test runs it too, so the image and
# the test cannot drift apart. npm settings come from the environment as usual
# (e.g. npm_config_prefer_offline=true to use the local cache).
set -eu

if [ "$#" -ne 2 ]; then
  echo "usage: install-runtime.sh SRC DEST" >&2
  exit 2
fi
src=$1
dest=$2

for part in package.json package-lock.json dist/cli/main.js grafana; do
  if [ ! -e "$src/$part" ]; then
    echo "install-runtime.sh: $src/$part is missing (compile first: npm run build)" >&2
    exit 1
  fi
done
mkdir -p "$dest"
if [ -n "$(ls -A "$dest")" ]; then
  echo "install-runtime.sh: $dest is not empty" >&2
  exit 1
fi

cp -R "$src/package.json" "$src/package-lock.json" "$src/dist" "$src/grafana" "$dest/"
cd "$dest"
NODE_ENV=production npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=warn
