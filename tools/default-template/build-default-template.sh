#!/usr/bin/env bash
# Builds the default template for real and starts a qube on it (root; needs debootstrap and bubblewrap:
# tools/ci/install.sh). Usage: build-default-template.sh [STORAGE (default /var/tmp/qa-default-template)] [SUITE]
set -euo pipefail
cd "$(dirname "$0")"
exec dotnet run -c Release build-default-template.cs -- "$@"
