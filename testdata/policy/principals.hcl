approvers = ["", "alice,bob", "%", "*", "lead"]

login {
  services = ["sshd", "ss hd"]
  exempt   = ["% admins"]
}

breakglass {
  users = "%sre"
}
