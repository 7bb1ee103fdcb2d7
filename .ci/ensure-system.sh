#!/bin/sh
# Debian packages the test suite and the demo need, and a Docker engine that answers.
# Reuses what is there; as root installs what is missing in one apt run (docker.io and
# debootstrap for the containers, chromium for the browser test, postgresql for the registry's
# PostgreSQL variant) and starts dockerd in the background (no iptables, no bridge: jobs run
# with --network none and builds need no network).
set -eu
missing=""
command -v dockerd >/dev/null 2>&1 || missing="$missing docker.io"
command -v debootstrap >/dev/null 2>&1 || missing="$missing debootstrap"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -n "$(ls /usr/lib/postgresql 2>/dev/null)" ] || missing="$missing postgresql"
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing Debian packages:$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    else
        echo "Missing system packages:$missing (install them as root; their tests will say why they cannot run)" >&2
    fi
fi
if docker info >/dev/null 2>&1; then
    echo "Docker engine: using the one that answers"
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v dockerd >/dev/null 2>&1; then
    echo "No Docker engine answers: start Docker (or run as root so this can start dockerd) and retry." >&2
    exit 1
fi
nohup dockerd --iptables=false --ip6tables=false --bridge=none >/var/log/spider-dockerd.log 2>&1 &
for _ in $(seq 60); do
    if docker info >/dev/null 2>&1; then
        echo "Docker engine: started dockerd (log: /var/log/spider-dockerd.log)"
        exit 0
    fi
    sleep 1
done
echo "dockerd did not answer within 60 s; see /var/log/spider-dockerd.log" >&2
tail -n 20 /var/log/spider-dockerd.log >&2 || true
exit 1
