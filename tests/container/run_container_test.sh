#!/usr/bin/env bash
# End-to-end test of the container image (make container-test).
#
# Builds the image, serves a feed on 127.0.0.1 from the host, runs the image's default
# command (`monitor run -c /config/monitor.yaml`) with --network=host, a temporary /data
# and a test /config, and checks: the image's metadata (non-root uid, HEALTHCHECK, stop
# signal, labels, volume, port), JSON logs, an alert appended to /data/alerts.jsonl, the
# SQLite file on the volume owned by the container's uid, readiness and `healthcheck run`
# (only once the image has `monitor health`), a clean exit 0 on SIGTERM within the stop
# timeout, and that a restart on the same /data remembers the feed (no second alert).
# Containers, the feed server and the temporary directory are removed in every case.
#
# Engine: $CONTAINER_ENGINE when set (the lines ../shared/container/prepare prints), else
# ../shared/container/prepare when it succeeds, else podman, else docker.
# Exit: 0 passed, 1 failed, 77 no container engine works here (nothing was tested).
# Env: IMAGE (default media-monitor:test), NO_BUILD=1 tests IMAGE as it is (no build),
#      KEEP=1 keeps the temporary directory,
#      MONITOR_HTTP_PORT (default 8080) where the daemon serves /readyz.
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE=${IMAGE:-media-monitor:test}
HTTP_PORT=${MONITOR_HTTP_PORT:-8080}
STOP_TIMEOUT=30 # > scheduler.shutdown_timeout in the test config (10 s)
START=$SECONDS

say() { printf '==> %s\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }
skip() { printf '    SKIPPED: %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  if [ -n "${cid:-}" ]; then
    printf -- '--- last container logs (%s) ---\n' "$cid" >&2
    $E logs "$cid" 2>&1 | tail -n 40 >&2 || true
  fi
  exit 1
}

# --- engine -------------------------------------------------------------------------
from_prepare=false
if [ -z "${CONTAINER_ENGINE:-}" ] && [ -f ../shared/container/prepare ]; then
  if out=$(bash ../shared/container/prepare Dockerfile); then
    eval "$(tail -n 3 <<<"$out")"
  else
    say "../shared/container/prepare could not set up an engine (see above); trying podman, docker"
  fi
fi
case "${CONTAINERS_CONF:-}" in */monitor-containers/*) from_prepare=true ;; esac
if [ -z "${CONTAINER_ENGINE:-}" ]; then
  if command -v podman >/dev/null && podman info >/dev/null 2>&1; then
    CONTAINER_ENGINE=podman
  elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    CONTAINER_ENGINE=docker
  else
    echo "container test SKIPPED: no working podman or docker here" >&2
    exit 77
  fi
fi
E=$CONTAINER_ENGINE
[ "$E" = podman ] && E="podman --log-level=fatal"
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python

# --- clean-up in every case ---------------------------------------------------------
cid=""
cids=()
feed_pid=""
tmp=$(mktemp -d "${TMPDIR:-/tmp}/monitor-container-test.XXXXXX")
cleanup() {
  local rc=$?
  for c in "${cids[@]}"; do $E rm -f -v "$c" >/dev/null 2>&1 || true; done
  if [ -n "$feed_pid" ]; then
    kill "$feed_pid" 2>/dev/null || true
    wait "$feed_pid" 2>/dev/null || true
  fi
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_until SECONDS DESCRIPTION COMMAND...: run COMMAND every 0.5 s until it succeeds.
wait_until() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$what: not within ${limit}s"
    if [ -n "$cid" ] && [ "$($E inspect -f '{{.State.Running}}' "$cid")" != true ]; then
      fail "$what: the container exited ($($E inspect -f '{{.State.ExitCode}}' "$cid"))"
    fi
    sleep 0.5
  done
}

# start_container NAME: run the image's default command on $tmp/data and $tmp/config.
start_container() {
  # `podman run -d` of an image with a HEALTHCHECK prints systemd noise on stderr
  # where there is no systemd: the id is on stdout.
  cid=$($E run -d --name "$1" --network=host \
    -v "$tmp/data:/data" -v "$tmp/config:/config:ro" "$IMAGE" 2>"$tmp/run.err") ||
    fail "could not start the container: $(cat "$tmp/run.err")"
  cids+=("$cid")
}

# --- build --------------------------------------------------------------------------
say "engine: $E ($($E --version 2>/dev/null | head -n 1))"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n 1)
build() {
  local args=(--network=host -t "$IMAGE" --build-arg "VERSION=$version"
    --build-arg "REVISION=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)")
  if [ "$CONTAINER_ENGINE" = podman ]; then
    # --format docker keeps the HEALTHCHECK; the base is a local stand-in after prepare
    args+=(--format docker --pull="$($from_prepare && echo never || echo missing)")
  fi
  $E build "${args[@]}" . >"$tmp/build.log" 2>&1 || {
    tail -n 40 "$tmp/build.log" >&2
    fail "image build failed"
  }
}
build_start=$SECONDS
if [ "${NO_BUILD:-0}" = 1 ]; then
  say "testing $IMAGE as it is (NO_BUILD=1)"
else
  say "building $IMAGE"
  build
  ok "built in $((SECONDS - build_start))s"
fi
build_s=$((SECONDS - build_start))

# --- image metadata -----------------------------------------------------------------
say "image metadata"
$E image inspect "$IMAGE" >"$tmp/inspect.json"
"$PY" - "$tmp/inspect.json" "$version" <<'PY' || fail "image metadata"
import json, sys

image = json.load(open(sys.argv[1]))[0]
config = image.get("Config") or {}
health = config.get("Healthcheck") or image.get("Healthcheck") or image.get("HealthCheck") or {}
labels = config.get("Labels") or {}
want = {
    "user": (config.get("User"), "10001:10001"),
    "healthcheck": (health.get("Test"), ["CMD", "monitor", "health"]),
    "stop signal": (config.get("StopSignal"), "SIGTERM"),
    "entrypoint": (config.get("Entrypoint"), ["monitor"]),
    "cmd": (config.get("Cmd"), ["run", "-c", "/config/monitor.yaml"]),
    "volumes": (sorted(config.get("Volumes") or {}), ["/data"]),
    "ports": (sorted(config.get("ExposedPorts") or {}), ["8080/tcp"]),
    "version label": (labels.get("org.opencontainers.image.version"), sys.argv[2]),
}
bad = [f"{k}: {got!r}, want {exp!r}" for k, (got, exp) in want.items() if got != exp]
for key in ("title", "description", "source", "licenses"):
    if f"org.opencontainers.image.{key}" not in labels:
        bad.append(f"label org.opencontainers.image.{key} missing")
print("\n".join("    " + b for b in bad) or "    ok: uid 10001, HEALTHCHECK monitor health, "
      "SIGTERM, entrypoint/cmd, /data volume, 8080, OCI labels")
sys.exit(1 if bad else 0)
PY
$E run --rm --network=host "$IMAGE" check >"$tmp/check.out" 2>&1 ||
  fail "the shipped configuration in the image does not check: $(cat "$tmp/check.out")"
ok "monitor check on the shipped /config/monitor.yaml: $(grep -m1 OK "$tmp/check.out")"

# --- feed server and configuration --------------------------------------------------
say "feed server on the host"
"$PY" -m tests.container.serve_feed >"$tmp/feed.out" 2>"$tmp/feed.err" &
feed_pid=$!
feed_url() { [ -s "$tmp/feed.out" ]; }
wait_until 10 "feed server start" feed_url
url=$(head -n 1 "$tmp/feed.out")
ok "$url"

mkdir -p "$tmp/data" "$tmp/config"
chmod 755 "$tmp"
chmod 777 "$tmp/data" # the container runs as uid 10001, the host user here is root
cat >"$tmp/config/monitor.yaml" <<EOF
# Relative paths on purpose: the image's working directory is /, so data/... is the
# /data volume, as for the shipped configuration.
storage:
  path: data/monitor.db
scheduler:
  interval: 5s
  jitter: 0
  delivery_interval: 0.5
  shutdown_timeout: 10
sinks:
  - {name: out, type: file, path: data/alerts.jsonl}
routes:
  - sinks: [out]
feeds:
  - {id: host-feed, title: Host feed, url: "$url"}
rules:
  - {kind: terms, id: new-weapon, severity: critical, any: [oreshnik]}
EOF
chmod 644 "$tmp/config/monitor.yaml"

# --- run: alert -----------------------------------------------------------------------
say "running the container"
run_start=$SECONDS
start_container "monitor-container-test-$$-1"
ok "container ${cid:0:12}"
alerts() {
  if [ -f "$tmp/data/alerts.jsonl" ]; then
    grep -c '"rule": *"new-weapon"' "$tmp/data/alerts.jsonl" || true
  else
    echo 0
  fi
}
has_alert() { [ "$(alerts)" -ge 1 ]; }
wait_until 90 "an alert in /data/alerts.jsonl" has_alert
alert_s=$((SECONDS - run_start))
ok "alert in /data/alerts.jsonl ${alert_s}s after start: $(head -c 120 "$tmp/data/alerts.jsonl")..."
owner=$(stat -c %u "$tmp/data/monitor.db" 2>/dev/null) || fail "no monitor.db on the /data volume"
[ "$owner" = 10001 ] || fail "monitor.db is owned by uid $owner, want 10001"
ok "/data/monitor.db on the volume, owned by uid 10001"
$E logs "$cid" >"$tmp/logs1.txt" 2>&1
"$PY" - "$tmp/logs1.txt" <<'PY' || fail "logs are not JSON lines with a 'started' event"
import json, sys
lines = [l for l in open(sys.argv[1]) if l.startswith("{")]
events = [json.loads(l).get("event") for l in lines]
sys.exit(0 if "started" in events and "polled" in events else 1)
PY
ok "logs are JSON lines (started, polled)"

# --- readiness and healthcheck (once the image has `monitor health`) ----------------------
health=skipped
if $E run --rm --network=none "$IMAGE" health --help >/dev/null 2>&1; then
  ready() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$HTTP_PORT/readyz"; }
  wait_until 60 "/readyz on 127.0.0.1:$HTTP_PORT" ready
  ok "/readyz answers 2xx on 127.0.0.1:$HTTP_PORT"
  if [ "$CONTAINER_ENGINE" = podman ]; then
    # no systemd here, so the HEALTHCHECK timer never fires: run it by hand
    $E healthcheck run "$cid" || fail "podman healthcheck run: unhealthy"
    ok "podman healthcheck run: healthy"
  else
    $E exec "$cid" monitor health || fail "monitor health in the container: not ready"
    ok "monitor health in the container: exit 0"
  fi
  health=passed
else
  skip "the image has no 'monitor health' command yet: /readyz and the HEALTHCHECK were not checked"
fi

# --- graceful stop --------------------------------------------------------------------
say "SIGTERM"
stop_start=$SECONDS
$E stop -t "$STOP_TIMEOUT" "$cid" >/dev/null
stop_s=$((SECONDS - stop_start))
code=$($E inspect -f '{{.State.ExitCode}}' "$cid")
[ "$code" = 0 ] || fail "exit code $code after SIGTERM, want 0 (137 means it was killed after ${STOP_TIMEOUT}s)"
$E logs "$cid" 2>&1 | grep -q '"event": *"stopped"' || fail "no 'stopped' event in the logs"
ok "exit 0 in ${stop_s}s (limit ${STOP_TIMEOUT}s), 'stopped' logged"

# --- restart on the same /data --------------------------------------------------------
say "restart on the same /data"
polls_before=$(grep -c '^GET /feed' "$tmp/feed.out" || true)
start_container "monitor-container-test-$$-2"
polled_again() { [ "$(grep -c '^GET /feed' "$tmp/feed.out" || true)" -gt "$polls_before" ] &&
  $E logs "$cid" 2>&1 | grep -q '"event": *"polled"'; }
wait_until 60 "a poll after the restart" polled_again
sleep 1 # one delivery tick, in case anything were (wrongly) due
answer=$(grep '^GET /feed' "$tmp/feed.out" | sed -n "$((polls_before + 1))p")
[ "$answer" = "GET /feed 304" ] || fail "first poll after restart answered '$answer', want 304 (stored ETag)"
[ "$(alerts)" = 1 ] || fail "$(alerts) alerts after the restart, want 1"
ok "first poll after restart was a conditional GET answered 304; still 1 alert"
$E stop -t "$STOP_TIMEOUT" "$cid" >/dev/null
code=$($E inspect -f '{{.State.ExitCode}}' "$cid")
[ "$code" = 0 ] || fail "exit code $code after SIGTERM (restart), want 0"
ok "exit 0"

total_s=$((SECONDS - START))
echo
echo "container test PASSED in ${total_s}s (build ${build_s}s, start to alert ${alert_s}s," \
  "stop ${stop_s}s; readiness/healthcheck: $health)"
