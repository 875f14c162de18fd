rule "web" {
  users    = ["%web"]
  commands = ["systemctl restart nginx", "/usr/bin/journalctl"]
  window   = ["Mon-Fri 09:00-17:00", "Someday 10:00-11:00"]
  timezone = "Mars/Olympus_Mons"
}

rule "web" {
  users    = []
  commands = ["/usr/bin/true"]
  runas    = ["%wheel"]
  runas_groups = ["adm", "%wheel"]
}

rule "no-commands" {
  users = ["alice"]
}
