# syntax=docker/dockerfile:1
# hedge-ledger: build the TypeScript once, ship only the compiled dist and production deps.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 builds natively when no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY projections ./projections
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    LEDGER_STORE=sqlite:/data/ledger.db \
    SCHWAB_TOKEN_FILE=/data/schwab-tokens.json \
    LEDGER_HTTP_HOST=0.0.0.0 \
    LEDGER_HTTP_PORT=8080
WORKDIR /app
# tini runs as PID 1 and passes signals on: node as PID 1 ignores SIGTERM and SIGINT in every command
# that sets no handler of its own (ingest, run --once, replay…), and docker stop would wait for its SIGKILL.
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/* \
  && useradd --system --uid 10001 --home-dir /app ledger && mkdir -p /data && chown ledger /data
COPY --from=build --chown=ledger /app/node_modules ./node_modules
COPY --from=build --chown=ledger /app/dist ./dist
COPY --chown=ledger package.json ./
COPY --chown=ledger bin ./bin
COPY --chown=ledger docs/example ./docs/example
USER ledger
VOLUME ["/data"]
EXPOSE 8080
# Inside the container the API binds 0.0.0.0 so the port can be published; publish it to
# 127.0.0.1 on the host (see docker-compose.yml) to keep it private.
# It asks where the API listens: 127.0.0.1 when it listens on every address, else LEDGER_HTTP_HOST.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const h=process.env.LEDGER_HTTP_HOST||'127.0.0.1';const host=h==='0.0.0.0'||h==='::'?'127.0.0.1':h.includes(':')?'['+h+']':h;fetch('http://'+host+':'+(process.env.LEDGER_HTTP_PORT||8080)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "bin/hedge-ledger.js"]
CMD ["run"]
