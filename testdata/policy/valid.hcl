# Every attribute and block jitd understands, with non-default values where
# that helps the tests tell a parsed value from a default.
socket    = "/run/jitd/test.sock"
state_dir = "/var/lib/jitd-test"
approvers = ["lead", "%oncall"]          # root always approves, even if not listed
default_duration = "1h"
max_duration     = "8h"
require_reason   = true
authenticate     = true                  # sudo asks the user's password (PAM service jit-sudo) before a grant is used
auth_cache       = "5m"                  # how long a successful authentication lasts per user+tty
grace_period     = "5s"                  # SIGTERM→SIGKILL when a grant ends
warn_before      = ["1m", "5m", "15m"]   # tty warnings before the end

rule "web-restarts" {
  users    = ["%web"]
  commands = ["/usr/bin/systemctl restart nginx", "/usr/bin/journalctl -u nginx *"]
  runas    = ["root"]
  runas_groups = ["adm"]
  window   = ["Mon-Fri 09:00-17:00"]
  timezone = "Europe/Berlin"
}

rule "status-for-all" {
  users    = ["*"]
  commands = ["/usr/bin/systemctl status *", "/usr/bin/uptime \"\""]
}

login {
  services = ["sshd", "login"]           # PAM services that need a login grant
  users    = ["*"]                       # or principals; who is gated
  exempt   = ["root", "%admins"]
}

breakglass {
  users        = ["%sre"]
  max_duration = "1h"
}

recording {
  required = true
  input    = true                        # record ttyin/stdin
}
