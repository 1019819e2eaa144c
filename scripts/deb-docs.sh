#!/usr/bin/env bash
# Generates the files the .deb carries under /usr/share: into dist/,
#   proxmox-agent.8.gz  the man page, from docs/proxmox-agent.8.md (its one source)
#   changelog.gz        Debian format, from the git history
#   copyright           DEP-5: the project, then every Go module linked into
#                       the static binary with its license (from the module cache)
# Called by scripts/build-deb.sh with VERSION and ARCH set. Reproducible: the
# dates come from the commit (or SOURCE_DATE_EPOCH), gzip stores no name/time.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${VERSION:?}" "${ARCH:?}"
MAINTAINER="proxmox-agent maintainers <maintainers@proxmox-agent.invalid>"
mkdir -p dist

epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

# --- man page
go run ./cmd/manpage -version "$VERSION" -date "$(TZ=UTC date -d "@$epoch" +%F)" \
  < docs/proxmox-agent.8.md | gzip -9n > dist/proxmox-agent.8.gz

# --- changelog: one entry for this version, listing the commits since the
# previous tag (all of them, at most 100, when there is none).
{
  echo "proxmox-agent ($VERSION) unstable; urgency=medium"
  echo
  if prev=$(git describe --tags --abbrev=0 HEAD^ 2>/dev/null); then range="$prev..HEAD"; else range="HEAD"; fi
  if subjects=$(git log --no-merges --format=%s -n 100 "$range" 2>/dev/null) && [ -n "$subjects" ]; then
    while IFS= read -r s; do
      # Debian changelog lines stay under 80 columns: wrap, indent the rest.
      printf '%s\n' "$s" | fold -s -w 74 | sed -e '1s/^/  * /' -e '2,$s/^/    /' -e 's/ *$//'
    done <<<"$subjects"
  else
    echo "  * Built outside a git checkout: no history available."
  fi
  echo
  echo " -- $MAINTAINER  $(LC_ALL=C TZ=UTC date -R -d "@$epoch")"
} | gzip -9n > dist/changelog.gz

# --- copyright
license_of() { # license_of FILE: a DEP-5 short name for the common ones
  if grep -q 'Apache License' "$1" && grep -q 'Version 2.0' "$1"; then echo Apache-2.0
  elif grep -q 'Mozilla Public License' "$1" && grep -q 'Version 2.0\|v\. 2\.0' "$1"; then echo MPL-2.0
  elif grep -q 'Permission is hereby granted, free of charge' "$1"; then echo Expat
  elif grep -q 'Redistribution and use in source and binary forms' "$1"; then
    if grep -qi 'neither the name\|names of its contributors' "$1"; then echo BSD-3-clause; else echo BSD-2-clause; fi
  else echo other; fi
}
body() { # body FILE: license text as a DEP-5 continuation (" " prefix, " ." for blank lines)
  sed -e 's/[[:space:]]*$//' -e 's/^$/./' -e 's/^/ /' "$1"
}
{
  echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
  echo "Upstream-Name: proxmox-agent"
  echo "Upstream-Contact: $MAINTAINER"
  echo "Comment: /usr/bin/proxmox-agent is a static Go binary: besides the"
  echo " project's own code it contains the Go standard library and the Go"
  echo " modules listed below, each under its own license. A \"Files:\" line names"
  echo " the module (path@version) whose code is linked in."
  echo
  echo "Files: *"
  echo "Copyright: the proxmox-agent maintainers"
  echo "License: undeclared"
  echo " The proxmox-agent repository does not declare a license yet (it has no"
  echo " LICENSE file). Until it does, no license is granted beyond what the"
  echo " maintainers grant in writing."
  goroot=$(go env GOROOT)
  echo
  echo "Files: go-stdlib@$(go env GOVERSION)"
  echo "Copyright: The Go Authors"
  echo "License: BSD-3-clause"
  body "$goroot/LICENSE"
  CGO_ENABLED=0 GOOS=linux GOARCH="$ARCH" go list -deps \
      -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}' ./cmd/proxmox-agent |
    sort -u | while read -r path version dir; do
      lic=$(ls "$dir" | grep -iE '^(licen[cs]e|copying)(\.(txt|md))?$' | head -n1) ||
        { echo "deb-docs: module $path $version has no LICENSE or COPYING file in $dir" >&2; exit 1; }
      name=$(license_of "$dir/$lic")
      echo
      echo "Files: $path@$version"
      echo "Copyright: the authors of $path, see its license"
      echo "License: $name"
      case $name in
        Apache-2.0|MPL-2.0)
          echo " On Debian systems the full text of the license is in"
          echo " /usr/share/common-licenses/$name."
          if [ -f "$dir/NOTICE" ]; then echo " ."; echo " The module's NOTICE file:"; echo " ."; body "$dir/NOTICE"; fi ;;
        *) body "$dir/$lic" ;;
      esac
    done
} > dist/copyright
