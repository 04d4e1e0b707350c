# syntax=docker/dockerfile:1
# One image for every `pipeline` subcommand (producer, consumer, mock-analytics, dlq): compose picks the
# subcommand with `command:`. Node 24 strips TypeScript types itself, so the sources run as they are and
# there is no build stage, only a dependency stage that keeps npm and its cache out of the final image.

FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# No runtime dependency has an install script; refusing them keeps the build from running registry code.
# `npm install` honours package-lock.json; `npm ci` would refuse it for lacking other platforms' Biome builds.
RUN npm install --omit=dev --ignore-scripts --no-audit --no-fund \
  && npm cache clean --force

FROM node:24-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and run as `node`: the process cannot rewrite its own code or dependencies.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY src ./src
COPY openapi ./openapi
USER node
# 9000 consumer, 9001 producer (metrics and health), 4020 mock Analytics.
EXPOSE 9000 9001 4020
ENTRYPOINT ["node", "src/cli.ts"]
CMD ["help"]
