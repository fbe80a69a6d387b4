#!/usr/bin/env bash
# Headless Chromium and its WebDriver from Debian's packages, for the report's browser test
# (tests marked `browser`). Needs root and apt-get; idempotent: with both installed it changes
# nothing. Prints the two paths it found or installed.
set -euo pipefail

find_browser() {
    for name in chromium chromium-browser google-chrome; do
        if command -v "$name" >/dev/null; then command -v "$name"; return; fi
    done
}

if [ -z "$(find_browser)" ] || ! command -v chromedriver >/dev/null; then
    if [ "$(id -u)" != 0 ]; then echo "install_browser.sh: needs root to install chromium" >&2; exit 2; fi
    command -v apt-get >/dev/null || { echo "install_browser.sh: no apt-get to install chromium" >&2; exit 2; }
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi
echo "browser: $(find_browser)"
echo "driver: $(command -v chromedriver)"
