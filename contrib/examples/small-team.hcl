# A small team with one on-call group.
#
# Nobody has standing root. Engineers ask (`jitctl request`); whoever is on
# call (group "oncall") approves. Read-only diagnostics are always allowed
# during office hours, without asking.
#
# Install as /etc/jitd/jitd.hcl, then `jitd -check-config` and
# `systemctl reload jitd`.

approvers        = ["%oncall"]
default_duration = "30m"
max_duration     = "4h"
require_reason   = true

# Ask for the user's own password before sudo uses a grant (PAM service
# jit-sudo), at most every 15 minutes per terminal.
authenticate = true
auth_cache   = "15m"

grace_period = "10s"
warn_before  = ["5m", "1m"]

rule "diagnostics" {
  users    = ["%engineers"]
  commands = [
    "/usr/bin/systemctl status *",
    "/usr/bin/journalctl *",
    "/usr/bin/ss -tlnp",
  ]
  window   = ["Mon-Fri 08:00-19:00"]
  timezone = "Europe/Berlin"
}

recording {
  enabled  = true
  required = false
  input    = false   # do not keep what people type (passwords at prompts)
}
