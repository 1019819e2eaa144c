#!/bin/sh
# postrm of proxmox-agent, after the deb-systemd-helper convention.
# DPKG_ROOT (dpkg --root, and scripts/test-deb.sh) points every path into
# another root.
set -e
unit=proxmox-agent.service
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null 2>&1 || true
fi
case "$1" in
remove)
    if command -v deb-systemd-helper >/dev/null 2>&1; then
        # Masks the unit while its file is gone, so that the links left in
        # place start nothing; the next install unmasks it.
        deb-systemd-helper mask "$unit" >/dev/null || true
    elif [ -z "${DPKG_ROOT:-}" ]; then
        systemctl disable "$unit" >/dev/null 2>&1 || true
    fi
    ;;
purge)
    if command -v deb-systemd-helper >/dev/null 2>&1; then
        deb-systemd-helper purge "$unit" >/dev/null || true
        deb-systemd-helper unmask "$unit" >/dev/null || true
    fi
    # Samples not yet delivered go with the package only on purge.
    rm -rf "${DPKG_ROOT:-}/var/lib/proxmox-agent"
    ;;
esac
exit 0
