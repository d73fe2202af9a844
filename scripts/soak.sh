#!/usr/bin/env bash
# The full soak (issue 11): ten minutes of load on the real `rally run` while its rules
# are reloaded every 3 s and its SMTP relay is killed and restarted every 15 s, then the
# checks of tests/soak.rs. Prints the figures (`soak figures:` and `soak sample:` lines).
# Same build profile as the suite. RALLY_SOAK_SECS, RALLY_SOAK_RATE and
# RALLY_SOAK_MEMBERS override the defaults below.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null; then
    echo "installing python3-aiosmtpd (the SMTP relay the soak stops and starts)..." >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-aiosmtpd >/dev/null
fi

export RALLY_SOAK_SECS="${RALLY_SOAK_SECS:-600}"
exec cargo test --test soak -- --nocapture "$@"
