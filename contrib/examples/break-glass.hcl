# Break-glass: when nobody on call answers, members of "sre" may grant
# themselves access for up to 30 minutes. Every break-glass grant is marked
# JIT_BREAKGLASS=true in the journal and in the audit chain, for review.
#
#   jitctl grant "$USER" --cmd ALL --for 30m --reason 'INC-4711: db down, oncall unreachable'
#
# Independently, sudo.conf may name a group that keeps sudo while jitd
# itself cannot be reached (plugin option breakglass_group=, see
# jit_sudo(8)); every such use is logged at priority alert:
#
#   jitctl setup sudo --enable --breakglass-group sre

approvers        = ["%oncall"]
default_duration = "1h"
max_duration     = "8h"
require_reason   = true

breakglass {
  users        = ["%sre"]
  max_duration = "30m"
}

recording {
  enabled  = true
  # A break-glass session that cannot be recorded is stopped.
  required = true
}
