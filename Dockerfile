# The CCTV images. The default target (the last stage, `all`) is one image for every role: the roles come
# from CCTV_ROLES (compose.yaml uses it so). Build: docker build -t cctv:local .
# One image per role, each with CCTV_ROLES set and its ports exposed, from the same build stage:
#   docker build --target signaling -t cctv-signaling .    (likewise sfu, camera-node, recorder, detector)
# See docs/deployment.md ("Containers") and docs/operations.md.

# ---- build: the whole workspace, built once for every target -----------------------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
# The manifests first, so the npm install layer is reused while only sources change.
COPY package.json package-lock.json .npmrc ./
COPY core/package.json core/
COPY camera-node/package.json camera-node/
COPY sfu/package.json sfu/
COPY recorder/package.json recorder/
COPY signaling/package.json signaling/
COPY web/package.json web/
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# ---- runtime: what every role's image shares ----------------------------------------------------------
FROM node:20-bookworm-slim AS runtime
# ffmpeg runs the cameras and the recordings, decodes for motion detection, transcodes H.265 for the SFU
# and cuts exports for signaling: every role starts it. setpriv (util-linux, already in the base image)
# ties each ffmpeg to the process that started it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app /app
# Data (identity, TLS certificate, saved assignments, the embedded database when there is no
# DATABASE_URL) lives in /data: mount a volume there. The processes run as the unprivileged `node` user.
RUN mkdir -p /data && chown node:node /data
ENV CCTV_DATA_DIR=/data
USER node
ENTRYPOINT ["node", "signaling/dist/cli.js"]

# ---- One image per role ------------------------------------------------------------------------------
# signaling: the dashboard, API and WHEP door on CCTV_PORT. Needs DATABASE_URL and REDIS_URL in a cluster.
FROM runtime AS signaling
ENV CCTV_ROLES=signaling CCTV_HOST=0.0.0.0 CCTV_PORT=8080
EXPOSE 8080/tcp

# sfu: browsers on a fixed UDP range (publish it: -p 40000-40099:40000-40099/udp, and set
# CCTV_SFU__ICE__ANNOUNCED_ADDRESSES to the host's LAN address); RTP from camera-nodes on any address, at a
# port it chooses per camera (reached over the container network). Enrols with CCTV_MASTER_URL.
FROM runtime AS sfu
ENV CCTV_ROLES=sfu CCTV_SFU__INGEST__BIND_HOST=0.0.0.0 CCTV_SFU__ICE__PORT_MIN=40000 CCTV_SFU__ICE__PORT_MAX=40099
EXPOSE 40000-40099/udp

# camera-node: only outgoing traffic (cameras' RTSP, RTP to the SFU). Pi cameras need the Pi's camera
# stack, which this image does not have: run a Pi's camera-node with deploy/install/install.sh.
FROM runtime AS camera-node
ENV CCTV_ROLES=camera-node

# recorder: RTP from the SFUs at a port it chooses per camera; set CCTV_RECORDER__LISTEN_HOST to its
# address on the container network, mount the NAS at /archive. Needs DATABASE_URL.
FROM runtime AS recorder
ENV CCTV_ROLES=recorder CCTV_NAS_DIR=/archive

# detector: like the recorder (CCTV_DETECTOR__LISTEN_HOST, DATABASE_URL); alerts go out to webhooks and MQTT.
FROM runtime AS detector
ENV CCTV_ROLES=detector

# ---- all (the default target): every role, chosen by CCTV_ROLES at run time (compose.yaml) ------------
FROM runtime AS all
EXPOSE 8080
