#!/usr/bin/env bash
# Make sure Debian's Chromium is there for the real-browser test (Playwright drives it; no
# browser is ever downloaded). Installs it as root when missing; otherwise only reports.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    echo "browser: using $(command -v chromium)"
    exit 0
fi
if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "browser: installing chromium (log: /var/log/opskit-apt.log)"
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } \
        >>/var/log/opskit-apt.log 2>&1 || { echo "browser: apt-get install chromium failed" >&2; exit 1; }
    exit 0
fi
echo "browser: chromium is missing and cannot be installed here; the browser test will skip" >&2
