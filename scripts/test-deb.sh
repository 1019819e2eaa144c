#!/usr/bin/env bash
# Inspects the .deb built by scripts/build-deb.sh: contents, modes, conffiles,
# control fields, the static version-stamped binary, the unit (and its
# exposure score where systemd-analyze exists), the logrotate snippet, the
# doc files and man page, and the maintainer scripts run against stub
# systemctl/deb-systemd-helper (first install, upgrade with the unit enabled
# or disabled, remove, purge). Prints "deb: N passed, M failed" and exits
# non-zero on a failure; a check that cannot run here says "skip".
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
check "token file 0600, installed empty"    has '^-rw------- root/root +0 .* \./etc/proxmox-agent/token$'
check "man page proxmox-agent(8)"           has '^-rw-r--r-- root/root .* \./usr/share/man/man8/proxmox-agent\.8\.gz$'
check "doc: copyright"                      has '^-rw-r--r-- root/root .* \./usr/share/doc/proxmox-agent/copyright$'
check "doc: changelog.gz"                   has '^-rw-r--r-- root/root .* \./usr/share/doc/proxmox-agent/changelog\.gz$'
check "doc: install.md"                     has '^-rw-r--r-- root/root .* \./usr/share/doc/proxmox-agent/install\.md$'
ctl=$(mktemp -d); x=$(mktemp -d); trap 'rm -rf "$ctl" "$x"' EXIT
dpkg-deb -e "$deb" "$ctl"; dpkg-deb -x "$deb" "$x"
check "config is a conffile"                grep -qx /etc/proxmox-agent/agent.toml "$ctl/conffiles"
check "logrotate is a conffile"             grep -qx /etc/logrotate.d/proxmox-agent "$ctl/conffiles"
check "token file is a conffile"            grep -qx /etc/proxmox-agent/token "$ctl/conffiles"
check "control: package and section"        grep -q '^Package: proxmox-agent$' "$ctl/control"
check "control: project maintainer"         grep -qx 'Maintainer: proxmox-agent maintainers <maintainers@proxmox-agent.invalid>' "$ctl/control"
check "control: Recommends smartmontools"   grep -qx 'Recommends: smartmontools' "$ctl/control"
check "control: no Homepage (none exists)"  sh -c "! grep -q '^Homepage:' '$ctl/control'"
check "maintainer scripts present"          test -x "$ctl/postinst" -a -x "$ctl/prerm" -a -x "$ctl/postrm"
version=$(dpkg-deb -f "$deb" Version)
check "binary is static"                    sh -c "! ldd '$x/usr/bin/proxmox-agent' 2>&1 | grep -q '=>'"
check "binary version = package version"    grep -qx "proxmox-agent $version" <("$x/usr/bin/proxmox-agent" version)
check "example config stays idle (no server_url)" sh -c "! '$x/usr/bin/proxmox-agent' check-config --config '$x/etc/proxmox-agent/agent.toml' 2>&1 | tee /dev/stderr | grep -q 'config ok'"
unit="$x/lib/systemd/system/proxmox-agent.service"
check "unit: Type=notify, watchdog, restart" sh -c "grep -qx 'Type=notify' '$unit' && grep -q '^WatchdogSec=' '$unit' && grep -qx 'Restart=on-failure' '$unit'"
for k in StateDirectory=proxmox-agent RuntimeDirectory=proxmox-agent RuntimeDirectoryMode=0700 ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes ProtectKernelTunables=yes ProtectKernelModules=yes ProtectKernelLogs=yes RestrictSUIDSGID=yes 'ReadWritePaths=-/var/log/proxmox-agent' \
  UMask=0077 'AssertPathExists=/etc/proxmox-agent/token' 'LoadCredential=token:/etc/proxmox-agent/token' 'ExecReload=/bin/kill -HUP $MAINPID' DevicePolicy=closed \
  'CapabilityBoundingSet=CAP_SYS_ADMIN CAP_SYS_RAWIO CAP_DAC_READ_SEARCH' SystemCallFilter=@system-service 'SystemCallFilter=~@privileged @resources' SystemCallErrorNumber=EPERM; do
  check "unit: $k" grep -qxF "$k" "$unit"
done
if command -v systemd-analyze >/dev/null; then
  # verify wants ExecStart to exist: point it at the extracted binary; and
  # it runs man for Documentation=: let it find the packaged page.
  sed "s|/usr/bin/proxmox-agent|$x/usr/bin/proxmox-agent|" "$unit" > "$x/proxmox-agent.service"
  check "systemd-analyze verify" sh -c "MANPATH='$x/usr/share/man' systemd-analyze verify '$x/proxmox-agent.service' 2>&1 | grep -v -e 'Failed to prepare filename' -e 'Unit .*\.target not found' -e 'Cannot add dependency' | tee /dev/stderr | (! grep -q .)"
  # The exposure score of the unit as packaged; issue 19 asks for <= 4.5.
  exposure() {
    local score
    score=$(systemd-analyze security --offline=true --no-pager "$x/proxmox-agent.service" 2>&1 | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
    echo "exposure: ${score:-none}"
    [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 4.5) }'
  }
  check "unit: systemd-analyze security exposure <= 4.5" exposure
  sed 's/^/     /' /tmp/test-deb.out
else
  echo "skip unit: systemd-analyze verify and exposure score (no systemd-analyze here)"
fi

# --- config and token: the packaged config holds no secret and says where
# the token comes from.
conf="$x/etc/proxmox-agent/agent.toml"
check "agent.toml: no token set"             sh -c "! grep -qE '^[[:space:]]*(token|token_file)[[:space:]]*=' '$conf'"
check "agent.toml: says where the token is"  sh -c "grep -q '^#.*/etc/proxmox-agent/token' '$conf' && grep -q '^#.*CREDENTIALS_DIRECTORY' '$conf'"

# --- /usr/share/doc
doc="$x/usr/share/doc/proxmox-agent"
check "copyright: DEP-5 header"              grep -qx 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' "$doc/copyright"
if command -v go >/dev/null; then
  # Every module linked into the binary has its license in copyright.
  modules_licensed() {
    local m missing=0
    for m in $(go version -m "$x/usr/bin/proxmox-agent" | awk '$1 == "dep" { print $2 "@" $3 }'); do
      grep -qx "Files: $m" "$doc/copyright" || { echo "copyright lacks $m"; missing=1; }
    done
    return $missing
  }
  check "copyright: every linked Go module"  modules_licensed
else
  echo "skip copyright: module list (no go here to read the binary's build info)"
fi
zcat "$doc/changelog.gz" > "$x/changelog"
check "changelog: Debian format, this version" grep -qxF "proxmox-agent ($version) unstable; urgency=medium" <(head -n1 "$x/changelog")
check "changelog: trailer line"              grep -qE '^ -- proxmox-agent maintainers <maintainers@proxmox-agent\.invalid>  [A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} [+-][0-9]{4}$' "$x/changelog"
if command -v dpkg-parsechangelog >/dev/null; then
  check "changelog: dpkg-parsechangelog reads it" grep -qxF "$version" <(dpkg-parsechangelog -l "$x/changelog" -S Version 2>&1)
fi

# --- the man page: renders, and names every command and flag the binary has.
zcat "$x/usr/share/man/man8/proxmox-agent.8.gz" > "$x/proxmox-agent.8"
check "man page: roff header, this version"  grep -qF ".TH \"PROXMOX\\-AGENT\" 8 " <(head -n1 "$x/proxmox-agent.8")
check "man page: footer names this version"  grep -qF "\"proxmox\\-agent ${version//-/\\-}\"" <(head -n1 "$x/proxmox-agent.8")
if command -v man >/dev/null; then
  render_man() {
    MANWIDTH=80 man --warnings -l "$x/proxmox-agent.8" 2>"$x/man.err" >"$x/man.txt"
    cat "$x/man.err"
    [ ! -s "$x/man.err" ] && grep -q 'proxmox-agent - Proxmox VE host monitoring agent' "$x/man.txt"
  }
  check "man page: man -l renders it without warnings" render_man
else
  echo "skip man page: man -l (man-db not installed); the roff header was checked"
fi
# The text to search: the rendered page, or the roff without font changes.
[ -s "$x/man.txt" ] || sed -e 's/\\f[BIR]//g' -e 's/\\-/-/g' "$x/proxmox-agent.8" > "$x/man.txt"
# The binary's help lists the commands; each command's --help its flags (a
# binary without per-command help prints the global help: the same test).
man_covers_cli() {
  local bin="$x/usr/bin/proxmox-agent" cmds c f bad=0 flags=""
  cmds=$("$bin" help 2>&1 | sed -n 's/^usage: proxmox-agent \[\([a-z|-]*\)\].*/\1/p' | tr '|' ' ')
  [ -n "$cmds" ] || cmds=$("$bin" help 2>&1 | sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p')
  [ -n "$cmds" ] || { echo "no command list in: $("$bin" help 2>&1 | head -n3)"; return 1; }
  for c in $cmds; do
    grep -qE "(^|[^a-z-])$c([^a-z-]|$)" "$x/man.txt" || { echo "man page lacks command $c"; bad=1; }
    for f in $("$bin" "$c" --help 2>&1 | sed -n 's/^ *-\{1,2\}\([a-z][a-z-]*\).*/\1/p' | sort -u); do
      flags="$flags $f"
      grep -q -- "-$f" "$x/man.txt" || { echo "man page lacks --$f (from $c --help)"; bad=1; }
    done
  done
  for f in --version -v token_file CREDENTIALS_DIRECTORY /etc/proxmox-agent/token; do
    grep -q -- "$f" "$x/man.txt" || { echo "man page lacks $f"; bad=1; }
  done
  echo "commands: $cmds"; echo "flags:$flags"
  [ -n "$flags" ] || { echo "no flag found in any --help: the help format changed?"; bad=1; }
  return $bad
}
check "man page: every command and flag of the binary" man_covers_cli

# --- maintainer scripts, run with stubs on PATH: what they call is logged
# and asserted. The paths they test (/run/systemd/system: "systemd runs";
# deb-systemd-helper's record of the unit) point into a scratch dir.
sim=$(mktemp -d); trap 'rm -rf "$ctl" "$x" "$sim"' EXIT
mkdir -p "$sim/stub" "$sim/bare" "$sim/run-systemd" "$sim/dsh"
for s in systemctl deb-systemd-helper deb-systemd-invoke; do
  {
    echo '#!/bin/sh'
    echo "echo \"$s \$*\" >> '$sim/log'"
    echo 'case "$*" in'
    echo '  *was-enabled*) [ "${STUB_WAS_ENABLED:-1}" = 1 ] ;;'
    echo '  *is-enabled*) [ "${STUB_ENABLED:-1}" = 1 ] ;;'
    echo 'esac'
  } > "$sim/stub/$s"
  chmod +x "$sim/stub/$s"
done
cp "$sim/stub/systemctl" "$sim/bare/systemctl"   # a system without deb-systemd-helper
ln -s "$(command -v rm)" "$sim/stub/rm"; ln -s "$(command -v rm)" "$sim/bare/rm"
for s in postinst prerm postrm; do
  sed -e "s|/run/systemd/system|$sim/run-systemd|g" -e "s|/var/lib/systemd/deb-systemd-helper-enabled|$sim/dsh|g" \
    -e "s|/var/lib/proxmox-agent|$sim/varlib|g" "$ctl/$s" > "$sim/$s"
done
# maint PATHDIR RECORD SCRIPT ARGS...: runs a maintainer script with only the
# stubs on PATH; RECORD "recorded" when deb-systemd-helper knows the unit.
maint() {
  local dir=$1 record=$2 script=$3; shift 3
  : > "$sim/log"; rm -f "$sim/dsh/proxmox-agent.service.dsh-also"
  [ "$record" = recorded ] && touch "$sim/dsh/proxmox-agent.service.dsh-also"
  PATH="$sim/$dir" /bin/sh "$sim/$script" "$@" || { echo "$script $* exited $?"; return 1; }
}
called() { grep -qxF "$1" "$sim/log" || { echo "not called: $1"; echo "calls:"; cat "$sim/log"; return 1; }; }
not_called() { ! grep -q -- "$1" "$sim/log" || { echo "called: $(grep -- "$1" "$sim/log")"; return 1; }; }
u=proxmox-agent.service
first_install() { maint stub none postinst configure '' && called "deb-systemd-helper enable $u" && called "deb-systemd-invoke start $u"; }
upgrade_enabled() { maint stub recorded postinst configure 0.9 && called "deb-systemd-helper enable $u" && called "deb-systemd-invoke restart $u"; }
upgrade_disabled() {
  STUB_WAS_ENABLED=0 STUB_ENABLED=0 maint stub recorded postinst configure 0.9 &&
    called "deb-systemd-helper update-state $u" && not_called ' enable ' && not_called 'systemctl start' && not_called 'systemctl restart'
}
upgrade_old_disabled() { STUB_ENABLED=0 maint stub none postinst configure 0.9 && called "deb-systemd-helper update-state $u" && not_called ' enable '; }
upgrade_old_enabled() { maint stub none postinst configure 0.9 && called "deb-systemd-helper enable $u"; }
bare_first() { maint bare none postinst configure '' && called "systemctl enable $u" && called "systemctl start $u"; }
bare_upgrade_disabled() { STUB_ENABLED=0 maint bare none postinst configure 0.9 && not_called 'systemctl enable' && not_called 'systemctl restart' && not_called 'systemctl start'; }
bare_upgrade_enabled() { maint bare none postinst configure 0.9 && called "systemctl restart $u" && not_called 'systemctl enable'; }
prerm_remove() { maint stub recorded prerm remove && called "deb-systemd-invoke stop $u" && not_called disable; }
prerm_upgrade() { maint stub recorded prerm upgrade 1.0 && not_called stop; }
postrm_remove_purge() {
  mkdir -p "$sim/varlib/spool"
  maint stub recorded postrm remove && called "deb-systemd-helper mask $u" && [ -d "$sim/varlib/spool" ] &&
    maint stub recorded postrm purge && called "deb-systemd-helper purge $u" && [ ! -e "$sim/varlib" ]
}
check "postinst, first install: enables and starts" first_install
check "postinst, upgrade, enabled: keeps it enabled, restarts" upgrade_enabled
check "postinst, upgrade, disabled: stays disabled, not started" upgrade_disabled
check "postinst, upgrade from a version without the record, disabled: stays disabled" upgrade_old_disabled
check "postinst, upgrade from a version without the record, enabled: recorded" upgrade_old_enabled
check "postinst, no deb-systemd-helper, first install: enable, start" bare_first
check "postinst, no deb-systemd-helper, upgrade, disabled: untouched" bare_upgrade_disabled
check "postinst, no deb-systemd-helper, upgrade, enabled: restart only" bare_upgrade_enabled
check "prerm remove: stops, keeps the enable state" prerm_remove
check "prerm upgrade: leaves the agent running" prerm_upgrade
check "postrm remove masks, keeps the spool; purge forgets the unit and the spool" postrm_remove_purge

# The same lifecycle with the real deb-systemd-helper and systemctl (offline,
# --root), in a scratch root given as DPKG_ROOT: what ends up enabled is
# read from the links on disk, not from what was called.
if command -v deb-systemd-helper >/dev/null && command -v systemctl >/dev/null; then
  root="$sim/root"
  wants="$root/etc/systemd/system/multi-user.target.wants/$u"
  record="$root/var/lib/systemd/deb-systemd-helper-enabled/$u.dsh-also"
  mkdir -p "$root/lib/systemd/system" "$root/etc/systemd/system" "$root/var/lib/proxmox-agent/spool"
  cp "$unit" "$root/lib/systemd/system/$u"
  dpkg_run() { # dpkg_run SCRIPT ARGS...: as dpkg runs it, into $root
    DPKG_ROOT="$root" DPKG_MAINTSCRIPT_PACKAGE=proxmox-agent DPKG_MAINTSCRIPT_NAME="$1" \
      /bin/sh "$ctl/$1" "${@:2}" || { echo "$1 ${*:2} exited $?"; return 1; }
  }
  enabled() { [ -L "$wants" ] || { echo "not enabled: no $wants"; return 1; }; }
  # -L: the link points at /lib/... of the real root, absent here.
  disabled() { [ ! -L "$wants" ] || { echo "enabled: $wants exists"; return 1; }; }
  real_first_install() { dpkg_run postinst configure '' && enabled && [ -e "$record" ]; }
  real_upgrade_enabled() { dpkg_run postinst configure 0.9 && enabled; }
  real_upgrade_disabled() {
    systemctl --root="$root" disable "$u" >/dev/null 2>&1 && disabled &&
      dpkg_run postinst configure 0.9 && disabled && dpkg_run postinst configure 0.9 && disabled
  }
  real_upgrade_from_unrecorded() {
    rm -rf "$root/var/lib/systemd/deb-systemd-helper-enabled" && disabled &&
      dpkg_run postinst configure 0.9 && disabled && [ -e "$record" ] && dpkg_run postinst configure 0.9 && disabled
  }
  real_reenable_then_purge() {
    systemctl --root="$root" enable "$u" >/dev/null 2>&1 && dpkg_run postinst configure 0.9 && enabled &&
      dpkg_run prerm remove && rm "$root/lib/systemd/system/$u" && dpkg_run postrm remove &&
      [ -d "$root/var/lib/proxmox-agent/spool" ] &&
      dpkg_run postrm purge && disabled && [ ! -e "$record" ] && [ ! -e "$root/var/lib/proxmox-agent" ]
  }
  check "real deb-systemd-helper: first install enables" real_first_install
  check "real deb-systemd-helper: upgrade keeps it enabled" real_upgrade_enabled
  check "real deb-systemd-helper: disabled by the operator, two upgrades later still disabled" real_upgrade_disabled
  check "real deb-systemd-helper: disabled before any record (older package), stays disabled" real_upgrade_from_unrecorded
  check "real deb-systemd-helper: remove keeps the spool, purge removes links, record and spool" real_reenable_then_purge
else
  echo "skip maintainer scripts with the real deb-systemd-helper (not installed here)"
fi
if command -v logrotate >/dev/null; then
  check "logrotate parses the snippet" logrotate -d "$x/etc/logrotate.d/proxmox-agent"
fi
echo "deb: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
