default_duration = "1d"
max_duration     = "90"
auth_cache       = "-5m"
grace_period     = "10m"
warn_before      = ["5m", "soon", "5m"]
