#!/usr/bin/env bash
# A Docker engine, the step image and the `toolmodal-docker` ZenML stack on this machine alone.
#
#   scripts/docker-local.sh up      # install, start dockerd, build images, register the stack
#   scripts/docker-local.sh run data [--config cpu]   # a pipeline, each step in a container
#   scripts/docker-local.sh stop    # stop the dockerd this script started
#   scripts/docker-local.sh status  # daemon, images and stack at a glance
#   eval "$(scripts/docker-local.sh env)"   # point `docker` at the project's daemon
#
# No image registry is reachable here, only PyPI and the Debian mirror, so `up`:
#   1. installs docker.io and debootstrap with apt-get when missing (needs root);
#   2. starts dockerd with its data, exec root and socket under .cache/docker/, without
#      iptables, masquerading or a bridge (nothing here may touch the host's network);
#   3. debootstraps a Debian bookworm root filesystem with python3.11 + venv and the host's CA
#      bundle and `docker import`s it as toolmodal-base:bookworm;
#   4. builds docker/Dockerfile.cpu on that base with host networking (pip reaches PyPI), torch
#      from the host's CPU wheel copied into docker/wheels/ (no multi-GB CUDA download);
#   5. registers, on the project-local ZenML store, a local image builder, a local_docker
#      orchestrator and the stack `toolmodal-docker` (artifact store and MLflow components of the
#      default `toolmodal-local` stack). `run` activates it and runs a pipeline with the
#      overlays given (default: cpu) plus configs/docker.yaml.
# Every step is skipped when its result is already there. dockerd runs under `nice` (NICE=15),
# so image builds and step containers yield the shared cores to everything else.
# Left out: registries, remote stacks and the CUDA image (docs/gpu-stack.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.cache/docker"
SOCK="$STATE/docker.sock"
PIDFILE="$STATE/dockerd.pid"
LOG="$STATE/dockerd.log"
PY="$ROOT/.venv/bin/python"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
NICE="${NICE:-15}"
BASE_IMAGE="toolmodal-base:bookworm"
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/pyproject.toml")"
IMAGE="toolmodal-cpu:$VERSION"
export DOCKER_HOST="unix://$SOCK"

say() { printf '[docker-local] %s\n' "$*"; }
die() { printf '[docker-local] error: %s\n' "$*" >&2; exit 1; }

daemon_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
has_image() { docker image inspect "$1" >/dev/null 2>&1; }

install_packages() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    if [ ${#missing[@]} -eq 0 ]; then say "docker.io and debootstrap: installed"; return; fi
    [ "$(id -u)" -eq 0 ] || die "installing ${missing[*]} needs root (apt-get)"
    say "installing ${missing[*]} with apt-get"
    apt-get install -y --no-install-recommends "${missing[@]}" >"$STATE/apt.log" 2>&1 \
        || { apt-get update >>"$STATE/apt.log" 2>&1 \
             && apt-get install -y --no-install-recommends "${missing[@]}" >>"$STATE/apt.log" 2>&1; } \
        || die "apt-get install ${missing[*]} failed; see $STATE/apt.log"
}

start_daemon() {
    if daemon_up; then say "dockerd: already running on $SOCK"; return; fi
    [ "$(id -u)" -eq 0 ] || die "dockerd needs root"
    say "starting dockerd (data and exec roots under $STATE, log $LOG)"
    mkdir -p "$STATE/data" "$STATE/exec"
    nohup nice -n "$NICE" dockerd --data-root "$STATE/data" --exec-root "$STATE/exec" \
        --host "$DOCKER_HOST" --pidfile "$PIDFILE" \
        --iptables=false --ip-masq=false --bridge=none >"$LOG" 2>&1 &
    for _ in $(seq 60); do daemon_up && { say "dockerd: up (pid $(cat "$PIDFILE"))"; return; }; sleep 1; done
    die "dockerd did not answer on $SOCK within 60 s; last lines of $LOG:
$(tail -n 20 "$LOG")"
}

stop_daemon() {
    if [ ! -f "$PIDFILE" ]; then say "dockerd: not running (no $PIDFILE)"; return; fi
    local pid; pid="$(cat "$PIDFILE")"
    if ! kill -0 "$pid" 2>/dev/null; then say "dockerd: not running (stale pid $pid)"; rm -f "$PIDFILE"; return; fi
    say "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || { say "dockerd: stopped"; return; }; sleep 1; done
    die "dockerd (pid $pid) still running after 60 s; see $LOG"
}

build_base_image() {
    if has_image "$BASE_IMAGE"; then say "$BASE_IMAGE: present"; return; fi
    local rootfs="$STATE/rootfs-bookworm"
    rm -rf "$rootfs"
    say "debootstrap bookworm from $MIRROR into $rootfs (a few minutes; log $STATE/debootstrap.log)"
    nice -n "$NICE" debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "$MIRROR" >"$STATE/debootstrap.log" 2>&1 \
        || die "debootstrap failed; last lines of $STATE/debootstrap.log:
$(tail -n 20 "$STATE/debootstrap.log")"
    # The host's bundle, so pip inside builds trusts whatever the host trusts (e.g. a proxy CA).
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    say "importing the root filesystem as $BASE_IMAGE"
    tar -C "$rootfs" -c . | docker import \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
        --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
        --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' \
        --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
}

# Prints the TORCH_SOURCE build argument: the host's CPU wheel when its pip has one (copied into
# docker/wheels/, part of the build context), else the PyTorch CPU index (the Dockerfile default).
torch_source() {
    local wheels="$ROOT/docker/wheels"
    if ! ls "$wheels"/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then
        "$PY" -m pip download "torch==2.13.0" --no-deps --quiet -d "$wheels" >&2 \
            || die "pip download torch==2.13.0 failed on the host"
        rm -f "$wheels"/torch-2.13.0-*.whl  # a CUDA build: not wanted in the CPU image
    fi
    if ls "$wheels"/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then
        echo "--find-links /tmp/wheels"
    else
        echo "--index-url https://download.pytorch.org/whl/cpu"
    fi
}

build_step_image() {
    local source; source="$(torch_source)"
    say "building $IMAGE from docker/Dockerfile.cpu (torch: $source; log $STATE/build-cpu.log)"
    local started=$SECONDS
    docker build --network host -f "$ROOT/docker/Dockerfile.cpu" \
        --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "TORCH_SOURCE=$source" \
        -t "$IMAGE" "$ROOT" >"$STATE/build-cpu.log" 2>&1 \
        || die "image build failed; last lines of $STATE/build-cpu.log:
$(tail -n 30 "$STATE/build-cpu.log")"
    say "$IMAGE: built in $((SECONDS - started)) s, $(docker images "$IMAGE" --format '{{.Size}}')"
}

register_stack() {
    [ -x "$PY" ] || die "no project venv at $PY (run \`make install\` first)"
    say "registering the toolmodal-docker stack on the project-local ZenML store"
    "$PY" "$ROOT/scripts/docker_stack.py" register
}

status() {
    if daemon_up; then
        say "dockerd: running on $SOCK ($(docker version --format '{{.Server.Version}}'))"
        docker images --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | sed 's/^/  /'
    else
        say "dockerd: not running"
    fi
}

mkdir -p "$STATE"
case "${1:-up}" in
    up)
        install_packages
        start_daemon
        build_base_image
        build_step_image
        register_stack
        say "done. Run the data pipeline with every step in its own container:"
        say "  scripts/docker-local.sh run data"
        ;;
    run)
        daemon_up || die "dockerd is not running; start it with \`$0 up\`"
        shift
        "$PY" "$ROOT/scripts/docker_stack.py" run "$@"
        ;;
    stop) stop_daemon ;;
    status) status ;;
    env) echo "export DOCKER_HOST=$DOCKER_HOST" ;;
    *) die "unknown command '$1' (use up, run, stop, status or env)" ;;
esac
