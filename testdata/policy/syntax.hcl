approvers = ["lead"

rule "x" {
  users = ["alice"]
