# syntax=docker/dockerfile:1
# Tollgate: multi-stage build on Node 20 slim; runs as the unprivileged "node" user.

# --- build: compile TypeScript and the native SQLite addon, then drop dev dependencies ---
FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 builds from source when no prebuilt binary fits.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
# `npm ci` runs the "prepare" script, which compiles src/ into dist/.
RUN npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund

# --- runtime: only what runs ---
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --chown=root:root package.json ./
COPY --chown=root:root examples ./examples
COPY --chown=root:root pac ./pac
# Writable state lives in /data (embedded store), owned by the runtime user.
RUN mkdir -p /data /app/certs && chown node:node /data /app/certs
USER node
VOLUME ["/data"]
EXPOSE 9400 9401
# The control listener must be reachable at 127.0.0.1:9401 inside the container for this check.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "require('http').get('http://127.0.0.1:9401/healthz',r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1)).setTimeout(2500,function(){this.destroy();process.exit(1)})"]
# SIGTERM drains in-flight requests for limits.shutdownGraceMs before exiting.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["start", "--config", "/app/examples/docker.yaml"]
