#!/bin/sh
set -e
if [ "$1" = "configure" ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable proxmox-agent.service >/dev/null
    # Restart on upgrade; on first install it starts idle until configured.
    systemctl restart proxmox-agent.service || true
fi
