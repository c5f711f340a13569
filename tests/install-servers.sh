#!/bin/sh
# Installs the real servers the integration tests talk to (Debian packages).
# Needs root (or sudo); does nothing when they are already installed.
set -eu
need=""
command -v promtool >/dev/null 2>&1 || need="$need prometheus"
if [ -n "$need" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq $need >/dev/null
fi
