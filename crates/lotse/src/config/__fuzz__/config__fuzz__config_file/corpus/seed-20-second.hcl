node_name  = "from-dir-20"
retry_join = ["dir-b"]
ports {
  http = 20001
}
