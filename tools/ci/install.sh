#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian 12 machine (run as root).
# Idempotent: it installs only what is missing, and runs `apt-get update` at most once.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
# need PACKAGE CHECK...: PACKAGE is missing when the command CHECK... fails.
need() {
    local package="$1"; shift
    if ! "$@" >/dev/null 2>&1; then missing+=("$package"); fi
}

need postgresql compgen -G '/usr/lib/postgresql/*/bin/initdb'
need chromium test -x /usr/bin/chromium
# The sandbox backend (issue 6): bubblewrap launches the sandboxes, busybox-static is the tests' tiny template,
# nftables enforces the firewall domain's rules, debootstrap builds the default template.
need bubblewrap test -x /usr/bin/bwrap
need busybox-static test -x /bin/busybox
need nftables test -x /usr/sbin/nft
need debootstrap test -x /usr/sbin/debootstrap
need iproute2 test -x /usr/sbin/ip -o -x /sbin/ip
# The guest tools (qrexec-client-vm, ...) are static C programs compiled with the solution.
need gcc test -x /usr/bin/gcc
need libc6-dev compgen -G '/usr/lib/*/libc.a'

if [ "${#missing[@]}" -gt 0 ]; then
    echo "install.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
fi

dotnet tool restore
