approver = ["lead"]

logins {
  services = ["sshd"]
}

recording {
  required = true
  output   = true
}
