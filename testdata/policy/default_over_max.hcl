default_duration = "12h"
max_duration     = "8h"

breakglass {
  users        = ["%sre"]
  max_duration = "10h"
}
