#!/usr/bin/env bash
# Runs Rally's whole test suite. The SMTP tests need a real SMTP server (Debian's
# python3-aiosmtpd), the dashboard test a real browser (Debian's chromium and
# chromium-driver), the cluster tests a real NATS JetStream server (Debian's
# nats-server); install them first when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null; then
    echo "installing python3-aiosmtpd (a real SMTP server for the email tests)..." >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-aiosmtpd >/dev/null
fi

# The dashboard's browser test drives Debian's headless Chromium through chromedriver.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    echo "installing chromium and chromium-driver (a real browser for the dashboard test)..." >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# The cluster tests run a real NATS JetStream server: Debian's nats-server.
if [ ! -x /usr/sbin/nats-server ] && ! command -v nats-server >/dev/null 2>&1; then
    echo "installing nats-server (a real JetStream server for the cluster tests)..." >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nats-server >/dev/null
fi

exec cargo test "$@"
