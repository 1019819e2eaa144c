#!/usr/bin/env bash
# Builds the static binary (version stamped), the man page, changelog and
# copyright (scripts/deb-docs.sh) and the .deb into dist/.
# nfpm is pinned and run through `go run`, so nothing but Go (and git for the
# changelog) is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
NFPM=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
VERSION=${VERSION:-$(bash scripts/version.sh)}
ARCH=${ARCH:-$(go env GOARCH)}
export VERSION ARCH
mkdir -p dist
CGO_ENABLED=0 GOARCH="$ARCH" go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o dist/proxmox-agent ./cmd/proxmox-agent
bash scripts/deb-docs.sh
go run "$NFPM" package --config packaging/nfpm.yaml --packager deb --target dist/
ls -l dist/
