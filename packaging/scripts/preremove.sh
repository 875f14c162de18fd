#!/bin/sh
# jit preremove (deb: remove|upgrade|deconfigure; rpm: $1 = 0 remove, 1 upgrade).
# Refuses to remove the package while sudo or PAM still load jit's modules:
# removing them then would lock everyone out of sudo (or of logins).
set -e

removing=no
case "$1" in
remove|deconfigure|0) removing=yes ;;
esac
[ "$removing" = yes ] || exit 0

used=""
if [ -f /etc/sudo.conf ] && grep -Eq '^[[:space:]]*Plugin[[:space:]].*jit_sudo\.so' /etc/sudo.conf; then
	used="$used /etc/sudo.conf"
fi
for f in /etc/pam.d/*; do
	[ -f "$f" ] || continue
	if grep -Eq '^[[:space:]]*-?(account|session|auth|password)[[:space:]].*pam_jit\.so' "$f"; then
		used="$used $f"
	fi
done
if [ -n "$used" ]; then
	echo "jit: refusing to remove: still in use by$used." >&2
	echo "jit: run 'jitctl setup sudo --disable' and 'jitctl setup pam --disable' first." >&2
	exit 1
fi

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl disable --now jitd.socket jitd.service >/dev/null 2>&1 || true
fi
exit 0
