#!/usr/bin/env bash
# Inspects the .deb built by scripts/build-deb.sh: contents, modes, conffiles,
# control fields, the static version-stamped binary, the unit and logrotate
# snippet. Prints "deb: N passed, M failed" and exits non-zero on a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
deb=$(ls -t dist/proxmox-agent_*.deb 2>/dev/null | head -n1)
[ -n "$deb" ] || { echo "no dist/proxmox-agent_*.deb: run scripts/build-deb.sh"; exit 1; }
pass=0; fail=0
check() { # check NAME COMMAND...
  local name=$1; shift
  if "$@" >/tmp/test-deb.out 2>&1; then pass=$((pass+1)); echo "ok   $name"
  else fail=$((fail+1)); echo "FAIL $name"; sed 's/^/     /' /tmp/test-deb.out | head -20; fi
}
contents=$(dpkg-deb -c "$deb")
has() { grep -qE "$1" <<<"$contents"; }
check "binary in /usr/bin, 0755"            has '^-rwxr-xr-x root/root .* \./usr/bin/proxmox-agent$'
check "example config 0600"                 has '^-rw------- root/root .* \./etc/proxmox-agent/agent\.toml$'
check "systemd unit"                        has '^-rw-r--r-- root/root .* \./lib/systemd/system/proxmox-agent\.service$'
check "logrotate snippet"                   has '^-rw-r--r-- root/root .* \./etc/logrotate\.d/proxmox-agent$'
check "spool dir owned by the package, 0700" has '^drwx------ root/root .* \./var/lib/proxmox-agent/spool/$'
ctl=$(mktemp -d); x=$(mktemp -d); trap 'rm -rf "$ctl" "$x"' EXIT
dpkg-deb -e "$deb" "$ctl"; dpkg-deb -x "$deb" "$x"
check "config is a conffile"                grep -qx /etc/proxmox-agent/agent.toml "$ctl/conffiles"
check "logrotate is a conffile"             grep -qx /etc/logrotate.d/proxmox-agent "$ctl/conffiles"
check "control: package and section"        grep -q '^Package: proxmox-agent$' "$ctl/control"
check "maintainer scripts present"          test -x "$ctl/postinst" -a -x "$ctl/prerm" -a -x "$ctl/postrm"
version=$(dpkg-deb -f "$deb" Version)
check "binary is static"                    sh -c "! ldd '$x/usr/bin/proxmox-agent' 2>&1 | grep -q '=>'"
check "binary version = package version"    grep -qx "proxmox-agent $version" <("$x/usr/bin/proxmox-agent" version)
check "example config stays idle (no server_url)" sh -c "! '$x/usr/bin/proxmox-agent' check-config --config '$x/etc/proxmox-agent/agent.toml' 2>&1 | tee /dev/stderr | grep -q 'config ok'"
unit="$x/lib/systemd/system/proxmox-agent.service"
check "unit: Type=notify, watchdog, restart" sh -c "grep -qx 'Type=notify' '$unit' && grep -q '^WatchdogSec=' '$unit' && grep -qx 'Restart=on-failure' '$unit'"
for k in StateDirectory=proxmox-agent RuntimeDirectory=proxmox-agent RuntimeDirectoryMode=0700 ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes ProtectKernelTunables=yes ProtectKernelModules=yes ProtectKernelLogs=yes RestrictSUIDSGID=yes 'ReadWritePaths=-/var/log/proxmox-agent'; do
  check "unit: $k" grep -qx "$k" "$unit"
done
if command -v systemd-analyze >/dev/null; then
  # verify wants ExecStart to exist: point it at the extracted binary.
  sed "s|/usr/bin/proxmox-agent|$x/usr/bin/proxmox-agent|" "$unit" > "$x/proxmox-agent.service"
  check "systemd-analyze verify" sh -c "systemd-analyze verify '$x/proxmox-agent.service' 2>&1 | grep -v -e 'Failed to prepare filename' -e 'Unit .*\.target not found' -e 'Cannot add dependency' | tee /dev/stderr | (! grep -q .)"
fi
if command -v logrotate >/dev/null; then
  check "logrotate parses the snippet" logrotate -d "$x/etc/logrotate.d/proxmox-agent"
fi
echo "deb: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
