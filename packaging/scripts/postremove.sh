#!/bin/sh
# jit postremove. The state directory (/var/lib/jitd: grants and the audit
# chain) is kept, also on purge: audit records outlive the package.
set -e
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
fi
if command -v journalctl >/dev/null 2>&1; then
	journalctl --update-catalog >/dev/null 2>&1 || true
fi
exit 0
