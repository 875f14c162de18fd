# /etc/jitd/jitd.hcl - policy of jitd, the just-in-time root elevation daemon.
#
# Every attribute and block is optional; what is left out takes the default
# shown in the comment. Check a change with `jitd -check-config` before you
# reload (systemctl reload jitd, or SIGHUP): a file with errors is refused
# and jitd keeps running with the policy it had.
#
# The file must be owned by root and not writable by group or others:
# whoever can edit it can make themselves an approver.
#
# Principals (who): "alice" is a user, "%ops" is a group, "*" is anyone
# (only where a comment says it is allowed).
# Durations: Go syntax with units h, m, s, e.g. "90m", "1h30m", "24h".

# Where jitd listens when systemd does not hand it a socket.
# socket = "/run/jitd/jitd.sock"

# Where jitd keeps its database (jitd.db).
# state_dir = "/var/lib/jitd"

# Who may grant, approve, deny and revoke, and read the audit trail.
# root always may, listed or not.
approvers = ["%oncall"]

# Grant length when a request names none, and the longest grant anyone
# (break-glass included) may get.
default_duration = "1h"
max_duration     = "8h"

# Requests and grants must say why (an incident or change number is ideal).
require_reason = true

# Ask the user's password (PAM service jit-sudo) before sudo uses a grant,
# and how long a successful authentication lasts per user and terminal
# ("0s" asks every time).
authenticate = false
auth_cache   = "5m"

# When a grant ends, its processes get SIGTERM, then SIGKILL after this long
# (at most 5m).
grace_period = "5s"

# Warn users on their terminal this long before a grant ends.
warn_before = ["5m", "1m"]

# Standing rules: who may run what, as whom, inside which windows, without
# asking for a grant - the sudoers / pam_time use case. Give each rule a
# unique name; audit events name the rule that allowed a command.
#
#   users    principals; "*" (anyone) is allowed here. Required.
#   commands sudoers-style patterns, absolute paths. Required.
#              "/usr/bin/systemctl restart nginx"  exactly these arguments
#              "/usr/bin/systemctl"                any arguments
#              "/usr/bin/journalctl \"\""          no arguments
#              "/usr/bin/journalctl -u nginx *"    globs in arguments
#              "ALL"                               anything, shells included
#   runas    target users; default: root only.
#   runas_groups
#            groups sudo -g may name besides the target user's own, as in
#            sudoers' (root : adm); "ALL" for any. runas ["ALL"] without
#            runas_groups allows any user and any group.
#   window   when the rule applies, e.g. "Mon-Fri 09:00-17:00",
#            "Sat,Sun 10:00-14:00", "Daily 22:00-06:00"; default: always.
#   timezone IANA zone of the windows, e.g. "Europe/Berlin"; default UTC.
rule "web-restarts" {
  users    = ["%web"]
  commands = ["/usr/bin/systemctl restart nginx", "/usr/bin/journalctl -u nginx *"]
  runas    = ["root"]
  window   = ["Mon-Fri 09:00-17:00"]
  timezone = "Europe/Berlin"
}

# Login gating: logins through these PAM services (pam_jit.so in their
# account stack) need a login grant. Without this block nothing is gated.
login {
  # PAM service names (files in /etc/pam.d). Empty: nothing is gated.
  services = ["sshd"]
  # Who is gated; "*" (anyone) is allowed here and is the default.
  users = ["*"]
  # Who logs in without a grant. root is NOT exempt unless listed: keep it
  # here, or a stopped jitd locks root out of ssh.
  exempt = ["root", "%admins"]
}

# Break-glass: these people may grant themselves access without an
# approver, for at most max_duration (default 1h, never above max_duration).
# Every break-glass grant is audited loudly. Without this block nobody may.
# breakglass {
#   users        = ["%sre"]
#   max_duration = "1h"
# }

# Recording of elevated sudo sessions into journald (jitctl replay).
recording {
  # Record at all.
  enabled = true
  # Stop a command rather than let it run unrecorded when the recording
  # cannot be written. Default false.
  required = false
  # Also record what users type (ttyin, stdin). That includes passwords
  # typed at prompts; set false where those must not be kept.
  input = true
}
