# Countersign container image.
#
#   docker build -t countersign:0.1.0 \
#     --build-arg VERSION="$(node -p 'require("./package.json").version')" \
#     --build-arg SOURCE_URL="$(git remote get-url origin)" .
#
# Build stage: the whole lock file (dev dependencies included) and the TypeScript compile.
# Runtime stage: the compiled dist/, package.json, the lock file, grafana/ and the production
# dependencies only, laid out by scripts/install-runtime.sh (the production-layout test runs the
# same script). Runs as UID/GID 10001 and works with a read-only root filesystem: the only place
# it writes is the file store's directory, /var/lib/countersign (a volume). See docs/deploy.md.

# A current Node.js LTS on Debian slim, pinned to a full version; override with
# --build-arg NODE_IMAGE=node:<version>-trixie-slim (or a digest).
ARG NODE_IMAGE=node:26.12.1-trixie-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Exactly what the lock file pins. `prepare` (the compile) runs below, once the sources are here.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build
COPY grafana ./grafana
COPY scripts/install-runtime.sh ./scripts/install-runtime.sh
RUN sh scripts/install-runtime.sh /src /app

FROM ${NODE_IMAGE}
ARG VERSION=0.1.0
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="countersign" \
      org.opencontainers.image.description="Outbound signing gateway for merchant open platforms (Keeta, KeySecure)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="UNLICENSED"

RUN groupadd --system --gid 10001 countersign \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin countersign \
 && mkdir -p /etc/countersign /var/lib/countersign \
 && chown 10001:10001 /var/lib/countersign

# Root-owned and read-only for the gateway's user.
COPY --from=build /app /app

ENV NODE_ENV=production
WORKDIR /app
USER 10001:10001
# Token store for `store.type: file` (store.path: /var/lib/countersign/tokens.json).
VOLUME ["/var/lib/countersign"]
# 8080 proxy, 8443 ingress (when listen.ingress is set), 9090 admin, health and metrics.
EXPOSE 8080 8443 9090

# node itself is PID 1 (no npm, no shell): SIGTERM reaches the gateway, which drains and exits
# with its own code.
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["serve", "--config", "/etc/countersign/config.yaml"]
