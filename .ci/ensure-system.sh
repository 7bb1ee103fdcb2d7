#!/bin/sh
# Make a Docker engine answer: reuse a running one, else install Debian's docker.io and
# debootstrap and start dockerd in the background (no iptables, no bridge: jobs run with
# --network none and builds need no network).
set -eu
if docker info >/dev/null 2>&1; then
    echo "Docker engine: using the one that answers"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "No Docker engine answers and this is not root: start Docker (or run as root) and retry." >&2
    exit 1
fi
if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
    echo "Installing Debian's docker.io and debootstrap ..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi
mkdir -p /var/log
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
