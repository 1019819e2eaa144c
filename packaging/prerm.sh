#!/bin/sh
# prerm of proxmox-agent: stop the agent when the package is removed. The
# enablement links stay (postrm masks the unit, purge removes them), so a
# reinstall after "apt remove" keeps the operator's enabled/disabled choice.
set -e
unit=proxmox-agent.service
if [ "$1" = "remove" ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    if command -v deb-systemd-invoke >/dev/null 2>&1; then
        deb-systemd-invoke stop "$unit" >/dev/null || true
    else
        systemctl stop "$unit" >/dev/null 2>&1 || true
    fi
fi
exit 0
