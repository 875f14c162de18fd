# SSH login gating: nobody logs in over SSH without a login grant, except
# root (console and break-glass keys) and the platform admins.
#
# Needs pam_jit in sshd's PAM stack: `jitctl setup pam --enable --service sshd
# --exempt-group admins` (keep a root session open while you test).
# A login grant: `jitctl grant alice --login --for 2h --reason CHG-12`, or
# alice asks: `jitctl request --login --for 2h --reason CHG-12`.
# When it ends, jitd ends the login (every process of its session).

approvers        = ["%oncall"]
default_duration = "2h"
max_duration     = "12h"
require_reason   = true
grace_period     = "30s"
warn_before      = ["15m", "5m", "1m"]

login {
  services = ["sshd"]
  users    = ["*"]
  # Keep root and an admin group here: while jitd is down pam_jit lets in
  # only root and exempt_group, and jitd must still be reachable by someone.
  exempt   = ["root", "%admins"]
}
