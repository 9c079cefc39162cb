#!/usr/bin/env bash
# Install the Debian packages behind the commands named, for those not on PATH yet:
#   scripts/system-packages.sh chromium wrk pg_dump openssl
# Used by .ci/run (the whole suite) and `make bench` (wrk), so a new machine needs nothing by hand.
set -euo pipefail

declare -A package_of=(
    [chromium]=chromium
    [wrk]=wrk
    [pg_dump]=postgresql-client
    [openssl]=openssl
)

need=()
for command_name in "$@"; do
    package="${package_of[$command_name]:-}"
    if [ -z "$package" ]; then
        echo "system-packages.sh: no package known for the command $command_name" >&2
        exit 2
    fi
    command -v "$command_name" >/dev/null 2>&1 || need+=("$package")
done
[ "${#need[@]}" -eq 0 ] && exit 0

echo "Installing system packages: ${need[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
