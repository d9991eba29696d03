# One image for every CCTV process; the roles come from CCTV_ROLES (see compose.yaml and
# docs/operations.md). Build: docker build -t cctv:local .
FROM node:20-bookworm-slim

# ffmpeg runs the cameras and the H.265 transcodes; setpriv (util-linux, already in the base image) ties
# each ffmpeg to the process that started it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# The manifests first, so the npm install layer is reused while only sources change.
COPY package.json package-lock.json .npmrc ./
COPY core/package.json core/
COPY camera-node/package.json camera-node/
COPY sfu/package.json sfu/
COPY signaling/package.json signaling/
COPY web/package.json web/
RUN npm ci --no-audit --no-fund

COPY . .
RUN npm run build

# Data (identity, TLS certificate, saved assignments, the embedded database when there is no
# DATABASE_URL) lives in /data: mount a volume there. The processes run as the unprivileged `node` user.
RUN mkdir -p /data && chown node:node /data
ENV CCTV_DATA_DIR=/data
USER node

EXPOSE 8080
ENTRYPOINT ["node", "signaling/dist/cli.js"]
