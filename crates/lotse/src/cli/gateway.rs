//! `lotse gateway -config FILE`: an edge gateway. One or more listeners, each routing requests
//! by host and path prefix to services found through the local agent, with the same engine as
//! the sidecar (`lotse-proxy`): balancing, retries, breakers, outlier detection, per-route and
//! per-client rate limits, load shedding, metrics and access logs.
//!
//! ```hcl
//! admin_bind = "127.0.0.1:19000"
//! listener {
//!   name             = "public"
//!   bind             = "127.0.0.1:8080"
//!   allowed_methods  = ["GET", "POST"]   # others: 405 (default: any)
//!   max_header_bytes = 16384             # 431 beyond
//!   max_body_bytes   = 1048576           # 413 for a larger Content-Length
//!   route {
//!     host        = "api.example.com"   # optional; "*.example.com" matches subdomains
//!     path_prefix = "/api/"             # default "/"
//!     service     = "api"
//!     api_keys_kv_prefix = "gateway/keys/"   # require a key kept in the KV store (401)
//!     jwt {                                  # and/or a JWT (Authorization: Bearer ...)
//!       hs256_secret          = "..."        # and/or:
//!       rs256_public_key_file = "/etc/lotse/jwt.pem"   # or rs256_public_key = "<PEM>"
//!       issuer                = "https://idp.example.com"   # optional
//!       audience              = "api"                       # optional
//!       leeway_seconds        = 60
//!     }
//!     cache {                                # keep shareable GET answers (Cache-Control)
//!       max_bytes       = 67108864
//!       max_entry_bytes = 1048576
//!     }
//!     config {                          # an upstream's config keys (lotse-proxy's config)
//!       rate_limit {
//!         requests_per_second = 100
//!       }
//!     }
//!   }
//!   route {
//!     service = "web"
//!   }
//! }
//! ```
//!
//! The same in JSON: `{"listener": [{"bind": ..., "route": [{...}]}]}`. Errors name the field
//! (`listener[0].route[1].service: required`).
//!
//! SIGHUP re-reads the file: listeners still named keep accepting with their new routes
//! (unchanged routes keep their state), others close or open, and the admin endpoint's
//! `config_version` goes up by one. A file that does not read or check is logged (naming the
//! field) and the running configuration stays.

use std::net::SocketAddr;

use clap::Parser;
use lotse_proxy::gateway::cache::CacheConfig;
use lotse_proxy::gateway::jwt::{rsa_public_key_from_pem, JwtConfig, JwtKey};
use lotse_proxy::gateway::validate::{Method, Validation};
use lotse_proxy::{
    AgentAddr, GatewaySpec, ProxySpec, RouteSpec, Source, UpstreamConfig, UpstreamSpec,
};
use serde_json::Value;

use super::connect::{init_logging, serve, Reload};
use super::flags::{self, HttpFlags};

pub const SYNOPSIS: &str = "Runs the built-in edge gateway";

#[derive(Parser, Debug)]
#[command(name = "gateway")]
struct GatewayArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// The gateway's configuration file (HCL, or JSON when it ends in .json).
    #[arg(long, value_name = "string", default_value = "")]
    config: String,
    /// Address for the admin endpoint; overrides `admin_bind` in the file. "" keeps the file's
    /// (default 127.0.0.1:19000).
    #[arg(long = "admin-bind", value_name = "string", default_value = "")]
    admin_bind: String,
    /// Log level: trace, debug, info, warn or error.
    #[arg(long = "log-level", value_name = "string", default_value = "info")]
    log_level: String,
    /// Write one JSON access-log line per request or connection (off by default, as Consul's
    /// proxies keep access logs off unless `proxy-defaults` turns them on).
    #[arg(long = "access-log")]
    access_log: bool,
    #[arg(num_args = 0.., allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

pub fn help() -> String {
    flags::usage::<GatewayArgs>(
        "Usage: lotse gateway -config FILE [options]

  Runs Lotse's edge gateway: listeners that route requests by host and
  path prefix to the healthy instances of services, with the proxy's load
  balancing, retries, circuit breaking, rate limits and load shedding.

      $ lotse gateway -config gateway.hcl

  Send SIGHUP to re-read the file; a broken file is logged and the running
  configuration kept.",
    )
}

pub fn run(args: &[String]) -> i32 {
    let a: GatewayArgs = match flags::parse(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if let Err(code) = flags::no_args(&a.args) {
        return code;
    }
    if a.config.is_empty() {
        eprintln!("-config is required");
        return 1;
    }
    let client = match a.http.client() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let _log = init_logging(&a.log_level, a.access_log);
    let agent = AgentAddr {
        base: client.config.base.clone(),
        token: client.config.token.clone(),
    };
    let admin_override = if a.admin_bind.is_empty() {
        None
    } else {
        match a.admin_bind.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => return flags::fail("Invalid -admin-bind", &a.admin_bind),
        }
    };
    let spec = match load(&a.config, &agent, admin_override) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let path = a.config.clone();
    let reload: Reload = Box::new(move || load(&path, &agent, admin_override));
    serve(spec, None, Some(reload))
}

/// Reads and checks the configuration file (at start, and again on every SIGHUP).
fn load(
    path: &str,
    agent: &AgentAddr,
    admin_override: Option<SocketAddr>,
) -> Result<ProxySpec, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("Error reading {path}: {e}"))?;
    let value: Value = if path.ends_with(".json") {
        serde_json::from_str(&text).map_err(|e| format!("Error parsing {path}: {e}"))?
    } else {
        hcl::from_str(&text).map_err(|e| format!("Error parsing {path}: {e}"))?
    };
    let mut spec = spec_from(&value, agent.clone()).map_err(|e| format!("Error in {path}: {e}"))?;
    if admin_override.is_some() {
        spec.admin_bind = admin_override;
    }
    Ok(spec)
}

/// A value that may be one object or a list of them (HCL blocks, JSON lists).
fn blocks(v: Option<&Value>) -> Vec<&Value> {
    match v {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(o @ Value::Object(_)) => vec![o],
        _ => Vec::new(),
    }
}

fn string<'a>(v: &'a Value, key: &str, field: &str) -> Result<Option<&'a str>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{field}.{key}: expected a string")),
    }
}

fn validation(l: &Value, here: &str) -> Result<Validation, String> {
    let mut v = Validation::default();
    match l.get("allowed_methods") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, m) in list.iter().enumerate() {
                let method = m
                    .as_str()
                    .and_then(|s| Method::from_bytes(s.to_ascii_uppercase().as_bytes()).ok())
                    .ok_or_else(|| format!("{here}.allowed_methods[{i}]: not an HTTP method"))?;
                v.allowed_methods.push(method);
            }
        }
        Some(_) => return Err(format!("{here}.allowed_methods: expected a list")),
    }
    let number = |key: &str| -> Result<Option<u64>, String> {
        match l.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(n) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| format!("{here}.{key}: expected a non-negative integer")),
        }
    };
    v.max_header_bytes =
        number("max_header_bytes")?.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    v.max_body_bytes = number("max_body_bytes")?;
    Ok(v)
}

fn cache_config(c: &Value, here: &str) -> Result<CacheConfig, String> {
    let number = |key: &str, default: usize| -> Result<usize, String> {
        match c.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| format!("{here}.{key}: expected a non-negative integer")),
        }
    };
    Ok(CacheConfig {
        max_bytes: number("max_bytes", 64 << 20)?,
        max_entry_bytes: number("max_entry_bytes", 1 << 20)?,
    })
}

fn jwt_config(j: &Value, here: &str) -> Result<JwtConfig, String> {
    let mut cfg = JwtConfig {
        leeway_secs: 60,
        ..JwtConfig::default()
    };
    if let Some(secret) = string(j, "hs256_secret", here)?.filter(|s| !s.is_empty()) {
        cfg.keys.push(JwtKey::Hs256(secret.as_bytes().to_vec()));
    }
    let pem = match (
        string(j, "rs256_public_key", here)?,
        string(j, "rs256_public_key_file", here)?,
    ) {
        (Some(pem), _) => Some((pem.to_string(), format!("{here}.rs256_public_key"))),
        (None, Some(file)) => {
            let field = format!("{here}.rs256_public_key_file");
            let text =
                std::fs::read_to_string(file).map_err(|e| format!("{field}: {file}: {e}"))?;
            Some((text, field))
        }
        (None, None) => None,
    };
    if let Some((pem, field)) = pem {
        let der = rsa_public_key_from_pem(&pem).map_err(|e| format!("{field}: {e}"))?;
        cfg.keys.push(JwtKey::Rs256(der));
    }
    if cfg.keys.is_empty() {
        return Err(format!(
            "{here}: hs256_secret or rs256_public_key(_file) is required"
        ));
    }
    cfg.issuer = string(j, "issuer", here)?.map(str::to_string);
    cfg.audience = string(j, "audience", here)?.map(str::to_string);
    if let Some(v) = j.get("leeway_seconds") {
        cfg.leeway_secs = v
            .as_u64()
            .ok_or_else(|| format!("{here}.leeway_seconds: expected a non-negative integer"))?;
    }
    Ok(cfg)
}

fn spec_from(v: &Value, agent: AgentAddr) -> Result<ProxySpec, String> {
    if !v.is_object() {
        return Err("expected an object at the top".into());
    }
    let admin_bind = match string(v, "admin_bind", "")? {
        None => Some(SocketAddr::from(([127, 0, 0, 1], 19000))),
        Some("") => None,
        Some(s) => Some(
            s.parse()
                .map_err(|_| format!("admin_bind: {s:?} is not IP:PORT"))?,
        ),
    };
    let mut gateways = Vec::new();
    let listeners = blocks(v.get("listener").or_else(|| v.get("listeners")));
    if listeners.is_empty() {
        return Err("listener: at least one listener block is required".into());
    }
    for (i, l) in listeners.into_iter().enumerate() {
        let here = format!("listener[{i}]");
        let bind = string(l, "bind", &here)?.ok_or_else(|| format!("{here}.bind: required"))?;
        let bind: SocketAddr = bind
            .parse()
            .map_err(|_| format!("{here}.bind: {bind:?} is not IP:PORT"))?;
        let name = string(l, "name", &here)?
            .map(str::to_string)
            .unwrap_or_else(|| format!("gateway-{}", bind.port()));
        let validation = validation(l, &here)?;
        let mut routes = Vec::new();
        let route_blocks = blocks(l.get("route").or_else(|| l.get("routes")));
        if route_blocks.is_empty() {
            return Err(format!("{here}.route: at least one route is required"));
        }
        for (j, r) in route_blocks.into_iter().enumerate() {
            let here = format!("{here}.route[{j}]");
            let service = string(r, "service", &here)?
                .filter(|s| !s.is_empty())
                .ok_or_else(|| format!("{here}.service: required"))?;
            let prefix = string(r, "path_prefix", &here)?.unwrap_or("/");
            if !prefix.starts_with('/') {
                return Err(format!("{here}.path_prefix: must start with /"));
            }
            let host = string(r, "host", &here)?
                .filter(|h| !h.is_empty())
                .map(|h| h.to_ascii_lowercase());
            let route_name = string(r, "name", &here)?
                .map(str::to_string)
                .unwrap_or_else(|| {
                    format!(
                        "{name}/{service}{}",
                        if j > 0 {
                            format!("#{j}")
                        } else {
                            String::new()
                        }
                    )
                });
            let config_value = blocks(r.get("config"))
                .first()
                .map(|c| (*c).clone())
                .unwrap_or(Value::Null);
            let (config, unknown) =
                UpstreamConfig::from_json(&config_value, &format!("{here}.config"))
                    .map_err(|e| e.to_string())?;
            for k in unknown {
                tracing::warn!(field = %k, "unknown key, ignored");
            }
            let api_keys_prefix = string(r, "api_keys_kv_prefix", &here)?
                .filter(|p| !p.is_empty())
                .map(str::to_string);
            let jwt = match blocks(r.get("jwt")).first() {
                Some(j) => Some(jwt_config(j, &format!("{here}.jwt"))?),
                None => None,
            };
            let cache = match blocks(r.get("cache")).first() {
                Some(c) => Some(cache_config(c, &format!("{here}.cache"))?),
                None => None,
            };
            routes.push(RouteSpec {
                host,
                path_prefix: prefix.to_string(),
                api_keys_prefix,
                jwt,
                cache,
                upstream: UpstreamSpec {
                    name: route_name,
                    bind,
                    source: Source::Service(service.to_string()),
                    config,
                },
            });
        }
        gateways.push(GatewaySpec {
            name,
            bind,
            validation,
            routes,
        });
    }
    Ok(ProxySpec {
        proxy_id: "gateway".into(),
        config_version: 1,
        agent: Some(agent),
        upstreams: Vec::new(),
        gateways,
        admin_bind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> AgentAddr {
        AgentAddr {
            base: "http://127.0.0.1:8500".into(),
            token: None,
        }
    }

    #[test]
    fn hcl_blocks_become_routes() {
        let v: Value = hcl::from_str(
            r#"
            listener {
              bind = "127.0.0.1:8080"
              route {
                host = "API.example.com"
                path_prefix = "/api/"
                service = "api"
                config {
                  rate_limit {
                    requests_per_second = 5
                  }
                }
              }
              route {
                service = "web"
              }
            }
            "#,
        )
        .expect("hcl");
        let spec = spec_from(&v, agent()).expect("valid");
        let g = &spec.gateways[0];
        assert_eq!(g.routes.len(), 2);
        assert_eq!(g.routes[0].host.as_deref(), Some("api.example.com"));
        assert_eq!(g.routes[0].path_prefix, "/api/");
        assert!(g.routes[0].upstream.config.rate_limit.route.is_some());
        assert_eq!(g.routes[1].path_prefix, "/");
    }

    #[test]
    fn load_reads_the_file_and_names_it_and_the_field_in_errors() {
        let dir = std::env::temp_dir().join(format!("lotse-gw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("gw.json");
        let p = path.to_str().expect("utf-8").to_string();
        std::fs::write(
            &path,
            r#"{"listener": {"bind": "127.0.0.1:8080", "route": {"service": "a"}}}"#,
        )
        .expect("write");
        let admin: SocketAddr = "127.0.0.1:29999".parse().expect("addr");
        let spec = load(&p, &agent(), Some(admin)).expect("valid");
        assert_eq!(spec.admin_bind, Some(admin));
        assert_eq!(spec.gateways[0].routes[0].path_prefix, "/");
        std::fs::write(
            &path,
            r#"{"listener": {"bind": "127.0.0.1:8080", "route": {}}}"#,
        )
        .expect("write");
        let err = load(&p, &agent(), None).expect_err("no service");
        assert_eq!(
            err,
            format!("Error in {p}: listener[0].route[0].service: required")
        );
        std::fs::write(&path, "{not json").expect("write");
        assert!(load(&p, &agent(), None)
            .expect_err("bad json")
            .starts_with(&format!("Error parsing {p}")));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn errors_name_the_field() {
        let v = serde_json::json!({"listener": [{"bind": "127.0.0.1:1", "route": [{"service": "a"}, {"path_prefix": "/x"}]}]});
        let err = spec_from(&v, agent()).expect_err("missing service");
        assert_eq!(err, "listener[0].route[1].service: required");
        let v = serde_json::json!({"listener": {"bind": "nowhere", "route": {"service": "a"}}});
        assert!(spec_from(&v, agent())
            .expect_err("bad bind")
            .starts_with("listener[0].bind"));
    }
}
