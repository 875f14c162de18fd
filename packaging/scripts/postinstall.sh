#!/bin/sh
# jit postinstall (deb: configure; rpm: $1 = 1 install, 2 upgrade).
# Creates the state directory and enables the socket. Never touches
# /etc/sudo.conf or PAM: that is `jitctl setup sudo|pam --enable`.
set -e

install -d -m 0700 -o root -g root /var/lib/jitd
install -d -m 0700 -o root -g root /etc/jitd/backup

# systemd may be absent (containers, chroots, image builds): then the
# administrator starts jitd however the system starts daemons.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
	systemctl enable jitd.socket >/dev/null 2>&1 || true
	# A running jitd is restarted onto the new binary (grants are in the
	# database; expiries that passed meanwhile are enforced at start).
	if systemctl is-active --quiet jitd.service; then
		systemctl try-restart jitd.service || true
	else
		systemctl start jitd.socket || true
	fi
else
	echo "jit: systemd is not running here; enable jitd.socket (or start /usr/sbin/jitd) yourself" >&2
fi
if command -v journalctl >/dev/null 2>&1; then
	journalctl --update-catalog >/dev/null 2>&1 || true
fi

cat >&2 <<'MSG'
jit is installed; sudo and PAM are unchanged. Next:
  edit /etc/jitd/jitd.hcl, check it:   jitd -check-config
  switch sudo to jit (reversible):     jitctl setup sudo --enable
  gate SSH logins (optional):          jitctl setup pam --enable --service sshd
MSG
exit 0
