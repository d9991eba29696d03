#!/bin/sh
# Installs CCTV on a Debian or Raspberry Pi OS machine as a systemd service: a server (the signaling role,
# by default every role) or a node (a Raspberry Pi camera-node, an SFU, a recorder) that enrols with the
# server at its first start. See docs/deployment.md.
#
#   sudo deploy/install/install.sh server [--redis URL --database URL] [--secret S] [--nas-dir DIR]
#   sudo deploy/install/install.sh node --roles camera-node --master https://192.168.1.10:8080 \
#        --token cctv_enroll_… [--fingerprint AB:CD:…] [--node-id pi-garage] [--redis URL]
#
# It installs the release it is part of: the tree two levels above this script, already built
# (`npm ci && npm run build`, so signaling/dist/cli.js exists). It is copied to /opt/cctv and its
# production dependencies are installed there with `npm ci --omit=dev` (native packages for this machine).
#
# Running it again is safe: the release and the units are replaced, /etc/cctv/cctv.env is kept unless
# --force is given, the service is restarted. Every path it writes is under --root (default /).
set -eu

PROG=install.sh
ALL_ROLES="signaling sfu camera-node recorder detector"
NODE_MIN_MAJOR=20
NODE_MIN_MINOR=19

say() { printf '[cctv] %s\n' "$*"; }
warn() { printf '[cctv] warning: %s\n' "$*" >&2; }
die() { printf '[cctv] %s: %s\n' "$PROG" "$*" >&2; exit 1; }
usage_error() { printf '[cctv] %s: %s\nRun %s --help for the options.\n' "$PROG" "$*" "$PROG" >&2; exit 2; }

usage() {
  cat <<'EOF'
Usage: install.sh server|node [options]

  server                 this machine runs the signaling role (the dashboard and API); default every role
  node                   this machine runs roles without signaling and enrols with a server at its first start

Options:
  --roles LIST           comma list of signaling, sfu, camera-node, recorder, detector
                         (server default: all five; node default: camera-node)
  --node-id ID           the node's unique id in the cluster (default: this machine's host name)
  --master URL           node: the signaling instance to enrol with, e.g. https://192.168.1.10:8080
  --token TOKEN          node: a one-time enrolment token (dashboard, Nodes page, "Add a node")
  --secret SECRET        node: the deployment's enrolment secret instead of a token;
                         server: the secret it accepts from nodes (16 characters or more)
  --fingerprint FP       node: the server certificate's SHA-256 fingerprint (AB:CD:…), when self-signed
  --redis URL            the cluster's Redis, redis://:PASSWORD@HOST:6379 (a node needs it to run)
  --database URL         Postgres, postgres://cctv:PASSWORD@HOST:5432/cctv (server in a cluster, recorder,
                         detector); without it a server keeps an embedded database in /var/lib/cctv/db
  --nas-dir DIR          the archive's directory (the NAS mount), for the recorder and for playback
  --listen-host ADDR     recorder/detector node: this machine's address as the SFUs reach it
  --port N               server: the dashboard's HTTP port (default 8080)
  --admin-password PW    server: the first admin's password (10+ characters; default: generated and
                         printed once in the service's log)
  --root DIR             install under DIR instead of / (an image build, a test); implies no systemctl
  --no-systemctl         do not call systemctl (install the units, enable and start nothing)
  --no-npm               do not run npm ci in /opt/cctv (its node_modules is provided otherwise)
  --force                replace an existing /etc/cctv/cctv.env (the old one is kept as cctv.env.bak)
  --any-os               install on a system other than Debian or Raspberry Pi OS
  -h, --help             this text
EOF
}

# ---- Arguments ----------------------------------------------------------------------------------------

MODE=""
ROLES=""
NODE_ID=""
MASTER=""
TOKEN=""
SECRET=""
FINGERPRINT=""
REDIS=""
DATABASE=""
NAS_DIR=""
LISTEN_HOST=""
PORT=""
ADMIN_PASSWORD=""
ROOT=/
SYSTEMCTL=1
NPM=1
FORCE=0
ANY_OS=0

need_value() {
  [ "$2" -ge 2 ] || usage_error "option $1 needs a value"
  case "$3" in --*) usage_error "option $1 needs a value (got the option '$3')" ;; esac
}

[ $# -gt 0 ] || { usage >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    server|node)
      [ -z "$MODE" ] || usage_error "give one of server or node, once (got '$MODE' and '$1')"
      MODE=$1 ;;
    --roles) need_value "$1" $# "${2:-}"; ROLES=$2; shift ;;
    --node-id) need_value "$1" $# "${2:-}"; NODE_ID=$2; shift ;;
    --master) need_value "$1" $# "${2:-}"; MASTER=$2; shift ;;
    --token) need_value "$1" $# "${2:-}"; TOKEN=$2; shift ;;
    --secret) need_value "$1" $# "${2:-}"; SECRET=$2; shift ;;
    --fingerprint) need_value "$1" $# "${2:-}"; FINGERPRINT=$2; shift ;;
    --redis) need_value "$1" $# "${2:-}"; REDIS=$2; shift ;;
    --database) need_value "$1" $# "${2:-}"; DATABASE=$2; shift ;;
    --nas-dir) need_value "$1" $# "${2:-}"; NAS_DIR=$2; shift ;;
    --listen-host) need_value "$1" $# "${2:-}"; LISTEN_HOST=$2; shift ;;
    --port) need_value "$1" $# "${2:-}"; PORT=$2; shift ;;
    --admin-password) need_value "$1" $# "${2:-}"; ADMIN_PASSWORD=$2; shift ;;
    --root) need_value "$1" $# "${2:-}"; ROOT=$2; shift ;;
    --no-systemctl) SYSTEMCTL=0 ;;
    --no-npm) NPM=0 ;;
    --force) FORCE=1 ;;
    --any-os) ANY_OS=1 ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
  shift
done

# ---- Validation: everything is checked before anything is written ------------------------------------

[ -n "$MODE" ] || usage_error "say what to install: 'server' or 'node'"

if [ -z "$ROLES" ]; then
  if [ "$MODE" = server ]; then ROLES="signaling,sfu,camera-node,recorder,detector"; else ROLES=camera-node; fi
fi
has_role() { case ",$ROLES," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
OLD_IFS=$IFS; IFS=,
for r in $ROLES; do
  case " $ALL_ROLES " in
    *" $r "*) ;;
    *) IFS=$OLD_IFS; usage_error "unknown role '$r' in --roles (the roles are: $ALL_ROLES)" ;;
  esac
done
IFS=$OLD_IFS
case "$ROLES" in ,*|*,|*,,*|'') usage_error "--roles '$ROLES' has an empty role" ;; esac

if [ "$MODE" = server ]; then
  has_role signaling || usage_error "a server runs the signaling role: add signaling to --roles (or install a 'node')"
  [ -z "$MASTER$TOKEN$FINGERPRINT" ] || usage_error "--master, --token and --fingerprint are for a node; a server is the master"
else
  has_role signaling && usage_error "a node does not run the signaling role: install a 'server' for that"
  # Enrolment settings are needed to write cctv.env; not when an existing one is kept (an upgrade).
  case "$ROOT" in /*) ;; *) usage_error "--root '$ROOT' must be an absolute path" ;; esac
  if [ ! -e "${ROOT%/}/etc/cctv/cctv.env" ] || [ "$FORCE" = 1 ]; then
    [ -n "$MASTER" ] || usage_error "a node needs --master URL (the server to enrol with, e.g. https://192.168.1.10:8080)"
    [ -n "$TOKEN$SECRET" ] || usage_error "a node needs --token (a one-time token from the dashboard's Nodes page) or --secret (the deployment's enrolment secret)"
  fi
  [ -z "$TOKEN" ] || [ -z "$SECRET" ] || usage_error "give --token or --secret, not both"
  [ -z "$PORT$ADMIN_PASSWORD" ] || usage_error "--port and --admin-password are for a server"
fi

case "$MASTER" in ''|http://?*|https://?*) ;; *) usage_error "--master '$MASTER' must be an http:// or https:// URL" ;; esac
case "$REDIS" in ''|redis://?*|rediss://?*) ;; *) usage_error "--redis '$REDIS' must be a redis:// or rediss:// URL" ;; esac
case "$DATABASE" in ''|postgres://?*|postgresql://?*) ;; *) usage_error "--database '$DATABASE' must be a postgres:// URL" ;; esac
if [ -n "$TOKEN" ] && [ ${#TOKEN} -lt 8 ]; then usage_error "--token is too short to be an enrolment token"; fi
if [ -n "$SECRET" ] && [ ${#SECRET} -lt 16 ]; then usage_error "--secret must be 16 characters or more"; fi
if [ -n "$ADMIN_PASSWORD" ] && [ ${#ADMIN_PASSWORD} -lt 10 ]; then usage_error "--admin-password must be 10 characters or more"; fi
if [ -n "$FINGERPRINT" ] && ! printf '%s\n' "$FINGERPRINT" | grep -Eq '^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$'; then
  usage_error "--fingerprint must be the certificate's SHA-256 as 32 colon-separated hex bytes (AB:CD:…), as the server prints it"
fi
if [ -n "$PORT" ] && ! printf '%s\n' "$PORT" | grep -Eq '^[0-9]{1,5}$'; then usage_error "--port '$PORT' is not a port number"; fi
[ -z "$NODE_ID" ] && NODE_ID=$(uname -n | sed 's/[^A-Za-z0-9_.-]/-/g' | cut -c1-64)
printf '%s\n' "$NODE_ID" | grep -Eq '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' \
  || usage_error "--node-id '$NODE_ID' must be 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit"
case "$NAS_DIR" in ''|/*) ;; *) usage_error "--nas-dir '$NAS_DIR' must be an absolute path" ;; esac
case "$ROOT" in /*) ;; *) usage_error "--root '$ROOT' must be an absolute path" ;; esac

# ---- Where things go ---------------------------------------------------------------------------------

ROOT=$(printf '%s' "$ROOT" | sed 's:/*$::')   # '' for /
if [ -n "$ROOT" ]; then
  if [ "$SYSTEMCTL" = 1 ]; then say "--root is given: systemctl is not called (it would act on this machine, not on $ROOT)"; fi
  SYSTEMCTL=0
fi
OPT=$ROOT/opt/cctv
ETC=$ROOT/etc/cctv
ENV_FILE=$ETC/cctv.env
DATA=$ROOT/var/lib/cctv
UNIT_DIR=$ROOT/etc/systemd/system
if [ "$MODE" = server ]; then UNIT=cctv.service; else UNIT=cctv-node.service; fi

RELEASE=$(cd "$(dirname "$0")/../.." && pwd -P)
if [ ! -f "$RELEASE/package.json" ] || [ ! -f "$RELEASE/deploy/systemd/$UNIT" ]; then
  die "$RELEASE is not a CCTV release (no package.json or deploy/systemd/$UNIT): run the install.sh of an unpacked release"
fi
[ -f "$RELEASE/signaling/dist/cli.js" ] \
  || die "$RELEASE is not built (no signaling/dist/cli.js): run 'npm ci && npm run build' in it first, then this script again"

IS_ROOT=0
[ "$(id -u)" = 0 ] && IS_ROOT=1
if [ "$IS_ROOT" = 0 ] && [ -z "$ROOT" ]; then
  die "installing into / needs root: run it with sudo (or give --root DIR to install under a directory)"
fi
# The cctv user is made, and files are given to it, only for a real install (root, into /). Under --root
# the user would be made on this machine, not in the tree: an image build creates it in its own step.
OWN=0
if [ "$IS_ROOT" = 1 ] && [ -z "$ROOT" ]; then OWN=1; fi

# ---- Prerequisites: the OS, Node.js, ffmpeg ---------------------------------------------------------

# A missing prerequisite stops a real install; under --root it only matters on the target, so it is said.
problem() { if [ -z "$ROOT" ]; then die "$1"; else warn "$1 (not needed to install under --root; needed to run)"; fi; }
can_apt() { [ "$OWN" = 1 ] && command -v apt-get >/dev/null 2>&1; }

OS_ID=unknown
OS_NAME=unknown
if [ -r /etc/os-release ]; then
  # shellcheck disable=SC1091 # the running system's file
  OS_ID=$(. /etc/os-release && printf '%s %s' "${ID:-}" "${ID_LIKE:-}")
  # shellcheck disable=SC1091
  OS_NAME=$(. /etc/os-release && printf '%s' "${PRETTY_NAME:-${ID:-unknown}}")
fi
case " $OS_ID " in
  *" debian "*|*" raspbian "*) ;;
  *) if [ "$ANY_OS" = 1 ]; then warn "this is $OS_NAME, not Debian or Raspberry Pi OS; going on as --any-os asks"
     else die "this installer is for Debian and Raspberry Pi OS, and this is $OS_NAME; install by hand as docs/deployment.md describes, or give --any-os"; fi ;;
esac

node_version() { node -p 'process.versions.node' 2>/dev/null || true; }
node_ok() {
  v=$(node_version)
  [ -n "$v" ] || return 1
  major=${v%%.*}; rest=${v#*.}; minor=${rest%%.*}
  [ "$major" -gt "$NODE_MIN_MAJOR" ] || { [ "$major" -eq "$NODE_MIN_MAJOR" ] && [ "$minor" -ge "$NODE_MIN_MINOR" ]; }
}
apt_candidate_ok() {
  c=$(apt-cache policy nodejs 2>/dev/null | sed -n 's/^ *Candidate: *\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
  [ -n "$c" ] || return 1
  cmajor=${c% *}; cminor=${c#* }
  [ "$cmajor" -gt "$NODE_MIN_MAJOR" ] || { [ "$cmajor" -eq "$NODE_MIN_MAJOR" ] && [ "$cminor" -ge "$NODE_MIN_MINOR" ]; }
}
NODE_HELP="CCTV needs Node.js $NODE_MIN_MAJOR.$NODE_MIN_MINOR or newer. Debian 13 (trixie) has it: sudo apt-get install nodejs npm. On Debian 12 and Raspberry Pi OS bookworm (Node.js 18), install Node.js 22 from NodeSource: curl -fsSL https://deb.nodesource.com/setup_22.x | sudo bash - && sudo apt-get install nodejs"
if ! node_ok; then
  if can_apt && { apt-get update >/dev/null 2>&1 || true; apt_candidate_ok; }; then
    say "installing Debian's nodejs and npm with apt-get…"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm
  fi
fi
if ! node_ok; then
  found=$(node_version)
  problem "Node.js ${found:-is not installed}${found:+ is too old}. $NODE_HELP"
fi
NODE_BIN=$(command -v node || echo /usr/bin/node)

# Every role may start ffmpeg (cameras, recordings, motion, H.265 transcodes, exports).
if ! command -v ffmpeg >/dev/null 2>&1; then
  if can_apt; then
    say "installing ffmpeg with apt-get…"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg || true
  fi
  if ! command -v ffmpeg >/dev/null 2>&1; then
    if has_role camera-node || has_role recorder || has_role detector; then
      problem "ffmpeg is not installed (the $ROLES role(s) run it): sudo apt-get install ffmpeg"
    else
      warn "ffmpeg is not installed: exports and H.265 transcodes will fail until it is (sudo apt-get install ffmpeg)"
    fi
  fi
fi
if has_role camera-node && [ -r /proc/device-tree/model ] && grep -q 'Raspberry Pi' /proc/device-tree/model 2>/dev/null \
  && ! command -v rpicam-vid >/dev/null 2>&1; then
  warn "this is a Raspberry Pi without rpicam-vid: its own camera needs sudo apt-get install rpicam-apps"
fi
if [ "$NPM" = 1 ] && ! command -v npm >/dev/null 2>&1; then
  problem "npm is not installed (it installs the release's dependencies): sudo apt-get install npm, or Node.js from NodeSource, which includes it"
fi

# ---- The cctv user -----------------------------------------------------------------------------------

if [ "$OWN" = 1 ]; then
  if ! getent passwd cctv >/dev/null; then
    say "creating the system user cctv"
    useradd --system --user-group --home-dir /var/lib/cctv --no-create-home --shell /usr/sbin/nologin cctv
  fi
  # A Pi's camera devices belong to the group video (the units also add it).
  if has_role camera-node && getent group video >/dev/null; then usermod -a -G video cctv; fi
else
  if [ "$IS_ROOT" = 0 ]; then why="not running as root"; else why="installing under --root $ROOT"; fi
  say "$why: the cctv user is not created and files are not given to it (useradd --system --user-group cctv and chown on the target)"
fi
owner() { if [ "$OWN" = 1 ]; then chown "$1" "$2"; fi; }

# ---- Directories and the release ---------------------------------------------------------------------

mkdir -p "$ROOT/opt" "$ETC" "$DATA/backups" "$UNIT_DIR" "$ROOT/usr/local/bin"
chmod 0750 "$ETC" "$DATA" "$DATA/backups"
owner root:cctv "$ETC"
owner cctv:cctv "$DATA"
owner cctv:cctv "$DATA/backups"

if [ -d "$OPT" ] && [ "$(cd "$OPT" && pwd -P)" = "$RELEASE" ]; then
  say "the release is already $OPT: not copied"
else
  say "copying the release $RELEASE to $OPT…"
  rm -rf "$OPT.new"
  mkdir -p "$OPT.new"
  # Not copied: dependencies (installed below for this machine), local data and secrets.
  (cd "$RELEASE" && tar --exclude=./.git --exclude=node_modules --exclude=./data --exclude=./.env --exclude=./.ci -cf - .) \
    | (cd "$OPT.new" && tar --no-same-owner -xf -)
  if [ -d "$OPT" ]; then
    rm -rf "$OPT.previous"
    mv "$OPT" "$OPT.previous"
    say "the release it replaces is kept in $OPT.previous"
  fi
  mv "$OPT.new" "$OPT"
fi
chmod -R go-w "$OPT"

if [ "$NPM" = 1 ]; then
  say "installing the production dependencies in $OPT (npm ci --omit=dev)…"
  (cd "$OPT" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --omit=dev --no-audit --no-fund) \
    || die "npm ci failed in $OPT (see above): is the npm registry reachable? Run this script again once it is"
else
  say "--no-npm: the dependencies in $OPT/node_modules are not installed by this script"
fi

# ---- /etc/cctv/cctv.env ------------------------------------------------------------------------------

# A value goes in bare when it is plain, else in single quotes: systemd and sh read both the same way.
env_line() {
  case "$2" in
    *"'"*|*'
'*) die "the value of $1 may not hold a single quote or a newline" ;;
  esac
  if printf '%s' "$2" | grep -Eq '^[A-Za-z0-9_.,:/@%+=~-]*$'; then printf '%s=%s\n' "$1" "$2"; else printf "%s='%s'\n" "$1" "$2"; fi
}

write_env() {
  echo "# CCTV's configuration: the environment of $UNIT (EnvironmentFile=) and of /usr/local/bin/cctv."
  echo "# Written by deploy/install/install.sh $MODE. Any config key can be added as CCTV_<SECTION>__<KEY>"
  echo "# (see docs/operations.md, \"What each process needs\"); CCTV_CONFIG=/etc/cctv/cctv.yaml reads a config file."
  echo "# After a change: sudo systemctl restart ${UNIT%.service}"
  env_line CCTV_ROLES "$ROLES"
  env_line CCTV_NODE_ID "$NODE_ID"
  env_line CCTV_DATA_DIR /var/lib/cctv
  [ -z "$PORT" ] || env_line CCTV_PORT "$PORT"
  if [ -n "$REDIS" ]; then env_line REDIS_URL "$REDIS"
  elif [ "$MODE" = node ]; then echo "# The cluster's Redis: the node does not run without it."; echo "#REDIS_URL=redis://:REDIS_PASSWORD@SERVER:6379"; fi
  [ -z "$DATABASE" ] || env_line DATABASE_URL "$DATABASE"
  if [ "$MODE" = node ]; then
    echo "# Enrolment, read only at the first start (until /var/lib/cctv/node-identity.json exists);"
    echo "# remove the token or secret once the node shows on the dashboard's Nodes page."
    env_line CCTV_MASTER_URL "$MASTER"
    [ -z "$TOKEN" ] || env_line CCTV_ENROLL_TOKEN "$TOKEN"
    [ -z "$FINGERPRINT" ] || env_line CCTV_CLUSTER__MASTER_FINGERPRINT "$FINGERPRINT"
  fi
  if [ -n "$SECRET" ]; then
    [ "$MODE" = server ] && echo "# The enrolment secret nodes may enrol with (keep it like a password)."
    env_line CCTV_ENROLL_SECRET "$SECRET"
  fi
  if [ -n "$ADMIN_PASSWORD" ]; then
    echo "# The first admin's password, used only while the database has no user: remove it after the first start."
    env_line CCTV_ADMIN_PASSWORD "$ADMIN_PASSWORD"
  fi
  # An SFU in a cluster takes RTP from camera-nodes on other machines.
  if has_role sfu && { [ "$MODE" = node ] || [ -n "$REDIS" ]; }; then
    echo "# Camera-nodes on other machines send RTP here; they are told this machine's first LAN address,"
    echo "# or CCTV_SFU__INGEST__ADVERTISED_HOST. Behind NAT, browsers need CCTV_SFU__ICE__ANNOUNCED_ADDRESSES."
    env_line CCTV_SFU__INGEST__BIND_HOST 0.0.0.0
  fi
  if [ -n "$NAS_DIR" ]; then env_line CCTV_NAS_DIR "$NAS_DIR"
  elif has_role recorder; then echo "# The archive (the NAS mount; see docs/operations.md): by default under /var/lib/cctv."; echo "#CCTV_NAS_DIR=/mnt/nas/cctv"; fi
  if [ "$MODE" = node ] && { has_role recorder || has_role detector; }; then
    echo "# This machine's address as the SFUs reach it."
    if [ -n "$LISTEN_HOST" ]; then
      if has_role recorder; then env_line CCTV_RECORDER__LISTEN_HOST "$LISTEN_HOST"; fi
      if has_role detector; then env_line CCTV_DETECTOR__LISTEN_HOST "$LISTEN_HOST"; fi
    else
      if has_role recorder; then echo "#CCTV_RECORDER__LISTEN_HOST=192.168.1.20"; fi
      if has_role detector; then echo "#CCTV_DETECTOR__LISTEN_HOST=192.168.1.20"; fi
    fi
  fi
}

ENV_WRITTEN=0
if [ -e "$ENV_FILE" ] && [ "$FORCE" = 0 ]; then
  say "$ENV_FILE exists: kept as it is (--force replaces it)"
else
  if [ -e "$ENV_FILE" ]; then
    cp -p "$ENV_FILE" "$ENV_FILE.bak"
    say "the previous $ENV_FILE is kept as $ENV_FILE.bak"
  fi
  old_umask=$(umask); umask 077
  write_env > "$ENV_FILE.tmp"
  umask "$old_umask"
  chmod 0640 "$ENV_FILE.tmp"
  owner root:cctv "$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
  ENV_WRITTEN=1
  if [ "$OWN" = 1 ]; then say "wrote $ENV_FILE (mode 0640, owner root:cctv)"; else say "wrote $ENV_FILE (mode 0640; give it to root:cctv on the target)"; fi
fi

# ---- The cctv command --------------------------------------------------------------------------------

cat > "$ROOT/usr/local/bin/cctv.tmp" <<EOF
#!/bin/sh
# cctv: the installed CCTV command (backup, restore, migrate, verify, check-config…) with the service's
# configuration, run as the cctv user. Installed by deploy/install/install.sh.
set -eu
if [ "\$(id -u)" = 0 ]; then exec runuser -u cctv -- "\$0" "\$@"; fi
set -a
. /etc/cctv/cctv.env
set +a
exec $NODE_BIN /opt/cctv/signaling/dist/cli.js "\$@"
EOF
chmod 0755 "$ROOT/usr/local/bin/cctv.tmp"
mv "$ROOT/usr/local/bin/cctv.tmp" "$ROOT/usr/local/bin/cctv"

# ---- systemd units -----------------------------------------------------------------------------------

install_unit() {
  cp "$RELEASE/deploy/systemd/$1" "$UNIT_DIR/$1.tmp"
  chmod 0644 "$UNIT_DIR/$1.tmp"
  mv "$UNIT_DIR/$1.tmp" "$UNIT_DIR/$1"
}
UNITS=$UNIT
install_unit "$UNIT"
if [ "$MODE" = server ]; then
  install_unit cctv-backup.service
  install_unit cctv-backup.timer
  UNITS="$UNITS cctv-backup.service cctv-backup.timer"
fi

# What differs from the shipped unit goes in a drop-in, so the unit itself stays the release's.
DROPIN_DIR=$UNIT_DIR/$UNIT.d
DROPIN=$DROPIN_DIR/install.conf
{
  if [ "$NODE_BIN" != /usr/bin/node ]; then
    printf '[Service]\n# Node.js is not /usr/bin/node on this machine.\nExecStart=\nExecStart=%s /opt/cctv/signaling/dist/cli.js start\n' "$NODE_BIN"
  fi
  if [ -n "$NAS_DIR" ]; then
    printf '[Service]\n# The archive on the NAS is written to (ProtectSystem=strict makes the rest read-only).\nReadWritePaths=-%s\n' "$NAS_DIR"
  fi
} > "$UNIT_DIR/.$UNIT.install.conf"
if [ -s "$UNIT_DIR/.$UNIT.install.conf" ]; then
  mkdir -p "$DROPIN_DIR"
  chmod 0644 "$UNIT_DIR/.$UNIT.install.conf"
  mv "$UNIT_DIR/.$UNIT.install.conf" "$DROPIN"
  say "wrote $DROPIN"
else
  rm -f "$UNIT_DIR/.$UNIT.install.conf" "$DROPIN"
fi
say "installed $(echo "$UNITS" | sed "s:\([^ ]*\):$UNIT_DIR/\1:g")"

# A node without Redis cannot run: it is enabled but not started until REDIS_URL is set.
START=1
if [ "$MODE" = node ] && ! grep -q '^REDIS_URL=' "$ENV_FILE"; then
  START=0
  warn "no REDIS_URL in $ENV_FILE: the node cannot run without the cluster's Redis. Add REDIS_URL=redis://:PASSWORD@SERVER:6379 there, then: sudo systemctl start ${UNIT%.service}"
fi

if [ "$SYSTEMCTL" = 1 ]; then
  systemctl daemon-reload
  systemctl enable "$UNIT"
  [ "$MODE" = server ] && systemctl enable --now cctv-backup.timer
  if [ "$START" = 1 ]; then
    say "starting ${UNIT%.service}…"
    systemctl restart "$UNIT"
  fi
else
  say "systemctl not called: enable and start with  systemctl daemon-reload && systemctl enable --now $UNIT$([ "$MODE" = server ] && printf ' cctv-backup.timer')"
fi

# ---- What next ---------------------------------------------------------------------------------------

echo
say "installed CCTV ($MODE, roles $ROLES, node id $NODE_ID) in ${ROOT:-}/opt/cctv"
if [ "$ENV_WRITTEN" = 0 ]; then say "the configuration is the existing ${ROOT:-}/etc/cctv/cctv.env"; fi
if [ "$MODE" = server ]; then
  cat <<EOF
Next:
  1. Follow the start:  journalctl -u cctv -f
     It prints the dashboard's URL and its certificate's fingerprint (TLS certificate SHA-256: …);
     $([ -n "$ADMIN_PASSWORD" ] && echo "sign in as admin with the password you gave, then remove CCTV_ADMIN_PASSWORD from /etc/cctv/cctv.env." || echo "on the first start, the admin's generated password:  journalctl -u cctv | grep -A1 'First start'")
  2. Add each node on the dashboard's Nodes page ("Add a node": a one-time token), then on the node:
       sudo deploy/install/install.sh node --roles camera-node --master https://<this machine>:${PORT:-8080} \\
         --token <token> --fingerprint <fingerprint> --redis redis://:<password>@<this machine>:6379
  3. Backups: cctv-backup.timer runs 'cctv backup' nightly into /var/lib/cctv/backups (systemctl list-timers).
  See docs/deployment.md; upgrades: docs/upgrading.md.
EOF
else
  cat <<EOF
Next:
  1. The node enrols with ${MASTER:-the CCTV_MASTER_URL of cctv.env} at its first start (once):  journalctl -u cctv-node -f
     It is enrolled when /var/lib/cctv/node-identity.json exists and the log says it joined.
  2. Check it on the dashboard's Nodes page: $NODE_ID, roles $ROLES, alive.
  3. Then remove the enrolment credential, read only at the first start:
       sudo sed -i '/^CCTV_ENROLL_TOKEN=/d; /^CCTV_ENROLL_SECRET=/d' /etc/cctv/cctv.env
  See docs/deployment.md.
EOF
fi
