# syntax=docker/dockerfile:1
# One image for every `pipeline` subcommand (producer, consumer, mock-analytics, dlq): compose picks the
# subcommand with `command:`. The services run the compiled JavaScript (`dist/`), not the TypeScript
# sources: Node 24 could strip the types itself, but that loads its TypeScript stripper (a WebAssembly
# module) into every process and keeps each module's original source besides, about 20 MB of RSS per
# service for nothing at run time (bench/README.md, consumer, "Memory").

FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# No runtime dependency has an install script; refusing them keeps the build from running registry code.
# `npm install` honours package-lock.json; `npm ci` would refuse it for lacking other platforms' Biome builds.
RUN npm install --omit=dev --ignore-scripts --no-audit --no-fund \
  && npm cache clean --force

# The compiler and the type packages live in this stage only. The image's own Node runs tsc: with
# --ignore-scripts the `node` dev dependency never fetches its binary, so npm scripts are not used here.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm install --ignore-scripts --no-audit --no-fund
COPY src ./src
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json

FROM node:24-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and run as `node`: the process cannot rewrite its own code or dependencies.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY --from=build /app/dist ./dist
COPY openapi ./openapi
# Owned by the service user, so a named volume mounted here starts out writable for it (the mock
# Analytics keeps what it accepted there).
RUN mkdir -p /var/lib/pipeline && chown node:node /var/lib/pipeline
USER node
# 9000 consumer, 9001 producer (metrics and health), 4020 mock Analytics.
EXPOSE 9000 9001 4020
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["help"]
