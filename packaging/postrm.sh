#!/bin/sh
set -e
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
if [ "$1" = "purge" ]; then
    # Samples not yet delivered go with the package only on purge.
    rm -rf /var/lib/proxmox-agent
fi
