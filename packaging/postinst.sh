#!/bin/sh
# postinst of proxmox-agent, after the deb-systemd-helper convention (what
# dh_installsystemd generates): the unit is enabled on the first install
# only; on an upgrade an operator's "systemctl disable" stands, and a
# disabled unit is neither started nor restarted. DPKG_ROOT (dpkg --root,
# and scripts/test-deb.sh) points every path into another root.
set -e
unit=proxmox-agent.service
# deb-systemd-helper keeps, per unit, the links it created here; a unit it
# never enabled has no such record.
dsh_state=${DPKG_ROOT:-}/var/lib/systemd/deb-systemd-helper-enabled/$unit.dsh-also

sysctl() {
    if [ -n "${DPKG_ROOT:-}" ]; then systemctl --root="$DPKG_ROOT" "$@"; else systemctl "$@"; fi
}

case "$1" in
configure|abort-upgrade|abort-deconfigure|abort-remove) ;;
*) exit 0 ;;
esac

if command -v deb-systemd-helper >/dev/null 2>&1; then
    # Removes only a mask deb-systemd-helper set when the package was removed.
    deb-systemd-helper unmask "$unit" >/dev/null || true
    if [ -n "$2" ] && [ ! -e "$dsh_state" ] && command -v systemctl >/dev/null 2>&1 \
        && ! sysctl --quiet is-enabled "$unit" 2>/dev/null; then
        # An upgrade from a version that enabled the unit with systemctl
        # (no record here) and the operator has disabled it since: record
        # the links without creating them, so it stays disabled now and later.
        deb-systemd-helper update-state "$unit" >/dev/null || true
    elif deb-systemd-helper --quiet was-enabled "$unit"; then
        # True on the first install (nothing recorded yet) and when every
        # recorded link is still there: (re)create the links.
        deb-systemd-helper enable "$unit" >/dev/null || true
    else
        # Disabled by the operator: keep it so, only refresh the record.
        deb-systemd-helper update-state "$unit" >/dev/null || true
    fi
elif [ -z "$2" ] && command -v systemctl >/dev/null 2>&1; then
    # No deb-systemd-helper: enable on the first install ($2, the previous
    # version, is empty), leave the operator's choice alone on an upgrade.
    sysctl enable "$unit" >/dev/null 2>&1 || true
fi

if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
    # First install: start (it stays up idle until server_url and the token
    # are set). Upgrade: restart onto the new binary.
    if [ -n "$2" ]; then action=restart; else action=start; fi
    if command -v deb-systemd-invoke >/dev/null 2>&1; then
        # Does nothing for a disabled unit (and honours policy-rc.d).
        deb-systemd-invoke "$action" "$unit" >/dev/null || true
    elif systemctl --quiet is-enabled "$unit" 2>/dev/null; then
        systemctl "$action" "$unit" >/dev/null || true
    fi
fi
exit 0
