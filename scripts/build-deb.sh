#!/usr/bin/env bash
# Builds the static binary (version stamped) and the .deb into dist/.
# nfpm is pinned and run through `go run`, so nothing but Go is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
NFPM=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
# Debian versions must start with a digit: tags v1.2.3 -> 1.2.3, else 0.0.0~git<hash>.
if [ -z "${VERSION:-}" ]; then
  if tag=$(git describe --tags --exact-match 2>/dev/null); then
    VERSION=${tag#v}
  else
    VERSION="0.0.0~git$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
  fi
fi
ARCH=${ARCH:-$(go env GOARCH)}
export VERSION ARCH
mkdir -p dist
CGO_ENABLED=0 GOARCH="$ARCH" go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o dist/proxmox-agent ./cmd/proxmox-agent
go run "$NFPM" package --config packaging/nfpm.yaml --packager deb --target dist/
ls -l dist/
