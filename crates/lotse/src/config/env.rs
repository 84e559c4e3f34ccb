//! `LOTSE_*` environment variables (see the rule in `config.rs`'s header).
//!
//! Only the names listed by [`table`] are read; other `LOTSE_*` variables are left alone,
//! because the CLI uses the same prefix for its own settings (`LOTSE_HTTP_ADDR`,
//! `LOTSE_HTTP_TOKEN`, ...).

use serde_json::Value;

use super::partial::{self, Cx, Partial};
use super::{flags, set_path, ConfigError, Kind};

/// Every implemented key an environment variable may set, with its type.
pub const KEYS: &[(&str, Kind)] = &[
    ("server", Kind::Bool),
    ("bootstrap", Kind::Bool),
    ("bootstrap_expect", Kind::Int),
    ("data_dir", Kind::Str),
    ("node_name", Kind::Str),
    ("node_id", Kind::Str),
    ("datacenter", Kind::Str),
    ("primary_datacenter", Kind::Str),
    ("bind_addr", Kind::Str),
    ("client_addr", Kind::Str),
    ("advertise_addr", Kind::Str),
    ("ports.http", Kind::Int),
    ("ports.dns", Kind::Int),
    ("ports.server", Kind::Int),
    ("ports.serf_lan", Kind::Int),
    ("ports.serf_wan", Kind::Int),
    ("ports.grpc", Kind::Int),
    ("retry_join", Kind::List),
    ("start_join", Kind::List),
    ("retry_interval", Kind::Str),
    ("log_level", Kind::Str),
    ("log_json", Kind::Bool),
    ("enable_script_checks", Kind::Bool),
    ("enable_local_script_checks", Kind::Bool),
    ("domain", Kind::Str),
    ("alt_domain", Kind::Str),
    ("recursors", Kind::List),
    ("addresses.dns", Kind::Str),
    ("dns_config.allow_stale", Kind::Bool),
    ("dns_config.max_stale", Kind::Str),
    ("dns_config.node_ttl", Kind::Str),
    ("dns_config.udp_answer_limit", Kind::Int),
    ("dns_config.a_record_limit", Kind::Int),
    ("dns_config.enable_truncate", Kind::Bool),
    ("dns_config.only_passing", Kind::Bool),
    ("dns_config.disable_compression", Kind::Bool),
    ("dns_config.enable_additional_node_meta_txt", Kind::Bool),
    ("dns_config.recursor_strategy", Kind::Str),
    ("dns_config.recursor_timeout", Kind::Str),
    ("dns_config.soa.refresh", Kind::Int),
    ("dns_config.soa.retry", Kind::Int),
    ("dns_config.soa.expire", Kind::Int),
    ("dns_config.soa.min_ttl", Kind::Int),
    ("limits.kv_max_value_size", Kind::Int),
    ("limits.txn_max_req_len", Kind::Int),
    ("limits.txn_max_ops", Kind::Int),
    ("limits.http_max_conns_per_client", Kind::Int),
    ("session_ttl_min", Kind::Str),
    ("raft_snapshot_threshold", Kind::Int),
    ("raft_snapshot_interval", Kind::Str),
    ("ae_interval", Kind::Str),
    ("check_update_interval", Kind::Str),
    ("check_reap_interval", Kind::Str),
    ("encrypt", Kind::Str),
    ("encrypt_verify_incoming", Kind::Bool),
    ("encrypt_verify_outgoing", Kind::Bool),
    ("performance.raft_multiplier", Kind::Int),
    ("performance.leave_drain_time", Kind::Str),
    ("performance.rpc_hold_timeout", Kind::Str),
    ("reconnect_timeout", Kind::Str),
    ("leave_on_terminate", Kind::Bool),
    ("skip_leave_on_interrupt", Kind::Bool),
    ("rejoin_after_leave", Kind::Bool),
    ("retry_max", Kind::Int),
    ("raft_trailing_logs", Kind::Int),
    ("autopilot.cleanup_dead_servers", Kind::Bool),
    ("autopilot.last_contact_threshold", Kind::Str),
    ("autopilot.max_trailing_logs", Kind::Int),
    ("autopilot.min_quorum", Kind::Int),
    ("autopilot.server_stabilization_time", Kind::Str),
    ("gossip_lan.gossip_nodes", Kind::Int),
    ("gossip_lan.gossip_interval", Kind::Str),
    ("gossip_lan.probe_interval", Kind::Str),
    ("gossip_lan.probe_timeout", Kind::Str),
    ("gossip_lan.suspicion_mult", Kind::Int),
    ("gossip_lan.retransmit_mult", Kind::Int),
    ("acl.enabled", Kind::Bool),
    ("acl.default_policy", Kind::Str),
    ("acl.down_policy", Kind::Str),
    ("acl.policy_ttl", Kind::Str),
    ("acl.role_ttl", Kind::Str),
    ("acl.token_ttl", Kind::Str),
    ("acl.enable_key_list_policy", Kind::Bool),
    ("acl.enable_token_replication", Kind::Bool),
    ("acl.enable_token_persistence", Kind::Bool),
    ("acl.tokens.initial_management", Kind::Str),
    ("acl.tokens.agent_recovery", Kind::Str),
    ("acl.tokens.agent", Kind::Str),
    ("acl.tokens.default", Kind::Str),
    ("acl.tokens.replication", Kind::Str),
    ("acl.tokens.config_file_service_registration", Kind::Str),
    ("acl.tokens.dns", Kind::Str),
];

/// All recognised variables in the order they are applied: flag-name aliases first, then the
/// key names, so `LOTSE_NODE_NAME` wins over `LOTSE_NODE` when both are set.
pub fn table() -> Vec<(String, &'static str, Kind)> {
    let mut t: Vec<_> = flags::env_aliases().collect();
    t.extend(KEYS.iter().map(|(k, kind)| {
        (
            format!("LOTSE_{}", k.replace('.', "_").to_uppercase()),
            *k,
            *kind,
        )
    }));
    t
}

/// Reads the environment through `get` and decodes every variable that is set.
pub fn read(
    get: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Partial>, ConfigError> {
    let mut out = Vec::new();
    for (name, key, kind) in table() {
        let Some(raw) = get(&name) else { continue };
        let origin = format!("environment variable {name}");
        let bad = |reason: String| ConfigError::Value {
            origin: origin.clone(),
            key: key.to_string(),
            reason,
        };
        let value = match kind {
            Kind::Bool => Value::Bool(flags::parse_go_bool(raw.trim()).map_err(bad)?),
            Kind::Int => Value::from(
                raw.trim()
                    .parse::<i64>()
                    .map_err(|_| bad(format!("expected an integer, found {raw:?}")))?,
            ),
            Kind::Str => Value::String(raw),
            Kind::List => Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_string()))
                    .collect(),
            ),
            Kind::Map => continue,
        };
        let mut root = Value::Object(Default::default());
        set_path(&mut root, key, value);
        out.push(partial::decode(
            &root,
            &mut Cx {
                origin: &origin,
                warnings,
            },
        )?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read_map(vars: &[(&str, &str)]) -> Result<Partial, ConfigError> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut w = Vec::new();
        let mut p = Partial::default();
        for x in read(&|n| m.get(n).cloned(), &mut w)? {
            p.merge(&x);
        }
        assert!(w.is_empty(), "{w:?}");
        Ok(p)
    }

    #[test]
    fn names_follow_keys_and_flags() {
        let p = read_map(&[
            ("LOTSE_NODE_NAME", "n1"),
            ("LOTSE_HTTP_PORT", "1234"),
            ("LOTSE_PORTS_DNS", "-1"),
            ("LOTSE_ACL_ENABLED", "true"),
            ("LOTSE_ACL_TOKENS_AGENT", "tok"),
            ("LOTSE_RETRY_JOIN", "a, b,,c"),
            ("LOTSE_RETRY_INTERVAL", "5s"),
            ("LOTSE_HTTP_ADDR", "127.0.0.1:1"), // a CLI variable: not agent configuration
        ])
        .unwrap();
        assert_eq!(p.node_name.as_deref(), Some("n1"));
        assert_eq!((p.ports.http, p.ports.dns), (Some(1234), Some(-1)));
        assert_eq!(p.acl.enabled, Some(true));
        assert_eq!(p.acl.tokens.agent.as_deref(), Some("tok"));
        assert_eq!(p.retry_join, ["a", "b", "c"]);
        assert_eq!(p.retry_interval, Some(std::time::Duration::from_secs(5)));
    }

    #[test]
    fn key_name_wins_over_flag_alias() {
        let p = read_map(&[("LOTSE_NODE", "alias"), ("LOTSE_NODE_NAME", "key")]).unwrap();
        assert_eq!(p.node_name.as_deref(), Some("key"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = read_map(&[("LOTSE_HTTP_PORT", "abc")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("LOTSE_HTTP_PORT") && err.contains("abc"),
            "{err}"
        );
        let err = read_map(&[("LOTSE_SERVER", "yes")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("LOTSE_SERVER") && err.contains("invalid boolean"),
            "{err}"
        );
        let err = read_map(&[("LOTSE_SESSION_TTL_MIN", "10")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("LOTSE_SESSION_TTL_MIN") && err.contains("missing unit"),
            "{err}"
        );
    }

    #[test]
    fn every_key_decodes() {
        // Guards the table against drifting from the decoder: no key may warn as unknown.
        for (k, kind) in KEYS {
            let duration = ["ttl", "interval", "stale", "timeout", "_time", "threshold"]
                .iter()
                .any(|d| k.contains(d));
            let v = match kind {
                Kind::Bool => Value::Bool(true),
                Kind::Int => Value::from(1),
                Kind::Str if duration => Value::from("1s"),
                Kind::Str if *k == "dns_config.recursor_strategy" => Value::from("random"),
                Kind::Str => Value::from("x"),
                Kind::List if *k == "recursors" => Value::Array(vec![Value::from("10.0.0.1")]),
                Kind::List => Value::Array(vec![Value::from("x")]),
                Kind::Map => continue,
            };
            let mut root = Value::Object(Default::default());
            set_path(&mut root, k, v);
            let mut w = Vec::new();
            partial::decode(
                &root,
                &mut Cx {
                    origin: "t",
                    warnings: &mut w,
                },
            )
            .unwrap();
            assert!(w.is_empty(), "{k}: {w:?}");
        }
    }
}
