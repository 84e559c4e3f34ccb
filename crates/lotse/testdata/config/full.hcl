# The same configuration as full.json, in HCL.
server           = true
bootstrap_expect = 3
data_dir         = "/var/lib/lotse"
node_name        = "web-1"
node_id          = "ADF4238A-882B-9DDC-4A9D-5B6758E4159E"
node_meta {
  rack = "r1"
}
datacenter         = "EU-West_1"
primary_datacenter = "eu-west_1"
bind_addr          = "10.0.0.5"
client_addr        = "0.0.0.0"
advertise_addr     = "10.0.0.5"

ports {
  http     = 18500
  dns      = -1
  server   = 18300
  serf_lan = 18301
}
ports {
  serf_wan = 18302
  grpc     = 18502
}

retry_join     = ["10.0.0.6", "10.0.0.7"]
retry_interval = "1m30s"
log_level      = "DEBUG"
log_json       = true
enable_script_checks = true
domain         = "lotse."

limits {
  kv_max_value_size         = 1024
  txn_max_req_len           = 2048
  txn_max_ops               = 64
  http_max_conns_per_client = 50
  request_limits {
    mode       = "enforcing"
    read_rate  = 500
    write_rate = 200.5
  }
}

session_ttl_min         = "500ms"
raft_snapshot_threshold = 1000
raft_snapshot_interval  = "2m"

acl {
  enabled                  = true
  default_policy           = "deny"
  down_policy              = "async-cache"
  token_ttl                = "1h"
  enable_token_persistence = true
  tokens {
    initial_management = "root"
    agent              = "agent-token"
    default            = "anon"
  }
}
