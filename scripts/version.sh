#!/usr/bin/env bash
# Prints the version stamped into main.version, the same for `just build` and
# the .deb. Debian versions must start with a digit: a tag v1.2.3 gives 1.2.3,
# any other commit 0.0.0~git<hash> (sorts before every release).
set -euo pipefail
if tag=$(git describe --tags --exact-match 2>/dev/null); then
  echo "${tag#v}"
else
  echo "0.0.0~git$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
fi
