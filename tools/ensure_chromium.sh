#!/usr/bin/env bash
# Browser tests drive Debian's Chromium. Install it when missing and we may (root);
# otherwise say so: the browser tests then fail under BACKORDER_REQUIRE_SERVICES=1.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing Debian's chromium for the browser tests…"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "WARNING: /usr/bin/chromium is missing (sudo apt-get install chromium); browser tests will not run" >&2
fi
