node_name = "a"
ports {
  http = 
}
