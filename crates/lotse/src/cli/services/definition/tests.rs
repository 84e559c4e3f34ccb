//! Definition files → registration bodies, against what consul's loader and
//! `serviceToAgentService` make of the same files.

use std::path::Path;

use serde_json::json;

use super::*;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn load(name: &str, text: &str) -> Result<Loaded, String> {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), name, text);
    services_from_files(&[p])
}

fn body(r: &Registration) -> Value {
    serde_json::to_value(r).unwrap()
}

#[test]
fn json_with_pascal_case_keys() {
    let l = load("web.json", r#"{ "Service": { "Name": "web" } }"#).unwrap();
    assert_eq!(l.services.len(), 1);
    assert_eq!(
        body(&l.services[0]),
        json!({"Name": "web", "Weights": {"Passing": 1, "Warning": 1}})
    );
    assert!(l.warnings.is_empty());
}

#[test]
fn hcl_service_block_becomes_the_api_registration() {
    let l = load(
        "web.hcl",
        r#"
node_name = "ignored-agent-setting"
service {
  name = "web"
  id = "web1"
  port = 8080
  address = "10.0.0.5"
  tags = ["v1", "primary"]
  meta = { version = "1.2" }
  enable_tag_override = true
  tagged_addresses {
    lan = { address = "10.0.0.5", port = 8080 }
  }
  weights { passing = 3 }
  check {
    id = "web-ttl"
    ttl = "30s"
    service_id = "dropped"
  }
  checks = [
    { name = "http", http = "http://localhost:8080/health", interval = "10s", tls_skip_verify = false },
    { args = ["/bin/true"], interval = "5s", header = { X-A = ["1"] } },
  ]
  token = "not-sent"
}
"#,
    )
    .unwrap();
    assert_eq!(
        body(&l.services[0]),
        json!({
            "ID": "web1",
            "Name": "web",
            "Tags": ["v1", "primary"],
            "Port": 8080,
            "Address": "10.0.0.5",
            "TaggedAddresses": {"lan": {"Address": "10.0.0.5", "Port": 8080}},
            "EnableTagOverride": true,
            "Meta": {"version": "1.2"},
            "Weights": {"Passing": 3, "Warning": 1},
            "Checks": [
                {"Name": "http", "HTTP": "http://localhost:8080/health", "Interval": "10s"},
                {"ScriptArgs": ["/bin/true"], "Interval": "5s", "Header": {"X-A": ["1"]}},
                {"CheckID": "web-ttl", "TTL": "30s"}
            ]
        })
    );
}

#[test]
fn services_list_comes_before_the_single_service() {
    let l = load(
        "all.json",
        r#"{"service": {"name": "c"}, "services": [{"name": "a"}, {"name": "b", "kind": "bogus"}]}"#,
    )
    .unwrap();
    let names: Vec<&str> = l.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(
        l.services[1].kind, "",
        "an unknown kind is a typical service"
    );
}

#[test]
fn repeated_hcl_blocks_are_a_list() {
    let l = load(
        "two.hcl",
        "service {\n  name = \"a\"\n}\nservice {\n  name = \"b\"\n  kind = \"connect-proxy\"\n}\n",
    )
    .unwrap();
    assert_eq!(l.services.len(), 2);
    assert_eq!(l.services[1].kind, "connect-proxy");
    let l = load("one.hcl", "services {\n  name = \"only\"\n}\n").unwrap();
    assert_eq!(l.services[0].name, "only");
}

#[test]
fn proxy_and_sidecar_in_api_form() {
    let l = load(
        "proxy.json",
        r#"{"service": {"name": "web-proxy", "kind": "connect-proxy", "port": 21000,
            "proxy": {"destination_service_name": "web", "destination_service_id": "web1",
                      "local_service_port": 8080, "mesh_gateway": {"mode": "local"},
                      "config": {"keep_me": 1},
                      "upstreams": [{"destination_name": "db", "local_bind_port": 9191,
                                     "config": {"connect_timeout_ms": 100}}]},
            "connect": {"sidecar_service": {"port": 21001}}}}"#,
    )
    .unwrap();
    let b = body(&l.services[0]);
    assert_eq!(
        b["Proxy"],
        json!({
            "DestinationServiceName": "web",
            "DestinationServiceID": "web1",
            "LocalServicePort": 8080,
            "MeshGateway": {"Mode": "local"},
            "Config": {"keep_me": 1},
            "Upstreams": [{"DestinationName": "db", "LocalBindPort": 9191,
                           "Config": {"connect_timeout_ms": 100}}]
        })
    );
    assert_eq!(
        b["Connect"],
        json!({"SidecarService": {"Port": 21001, "Weights": {"Passing": 1, "Warning": 1}}})
    );
}

#[test]
fn unknown_keys_are_invalid_config_keys() {
    let e = load("bad.json", r#"{"service": {"name": "web", "bogus": 1}}"#).unwrap_err();
    assert!(e.starts_with("failed to parse "), "{e}");
    assert!(
        e.ends_with("bad.json: 1 error occurred:\n\t* invalid config key service.bogus\n\n"),
        "{e:?}"
    );
    let e = load(
        "bad.json",
        r#"{"services": [{"name": "a", "check": {"nope": "x"}, "weights": {"heavy": 1}}]}"#,
    )
    .unwrap_err();
    assert!(
        e.ends_with(
            "2 errors occurred:\n\t* invalid config key services[0].check.nope\n\
             \t* invalid config key services[0].weights.heavy\n\n"
        ),
        "{e:?}"
    );
}

#[test]
fn wrong_types_are_decode_errors() {
    let e = load("bad.json", r#"{"service": {"name": "web", "port": "80"}}"#).unwrap_err();
    assert!(
        e.ends_with(
            "1 error(s) decoding:\n\n* 'service.port' expected type 'int', got unconvertible \
             type 'string', value: '80'"
        ),
        "{e:?}"
    );
}

#[test]
fn syntax_errors_name_the_file() {
    let e = load("bad.json", "{\"service\": ").unwrap_err();
    assert!(
        e.starts_with("failed to parse ") && e.contains("bad.json: "),
        "{e}"
    );
    let e = load("bad.hcl", "service {\n  name = \n}\n").unwrap_err();
    assert!(e.contains("bad.hcl: "), "{e}");
}

#[test]
fn other_extensions_are_skipped_with_a_warning_and_empty_files_define_nothing() {
    let l = load("web.txt", r#"{"service": {"name": "web"}}"#).unwrap();
    assert!(l.services.is_empty());
    assert_eq!(l.warnings.len(), 1);
    assert!(
        l.warnings[0].starts_with("skipping file ")
            && l.warnings[0].ends_with(
                "web.txt, extension must be .hcl or .json, or config format must be set"
            ),
        "{:?}",
        l.warnings
    );
    assert!(load("empty.json", "").unwrap().services.is_empty());
}

#[test]
fn a_directory_contributes_its_files_in_order() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "b.json", r#"{"service": {"name": "b"}}"#);
    write(dir.path(), "a.hcl", "service {\n  name = \"a\"\n}\n");
    write(dir.path(), "notes.md", "ignored");
    std::fs::create_dir(dir.path().join("sub.json")).unwrap();
    let l = services_from_files(&[dir.path().display().to_string()]).unwrap();
    let names: Vec<&str> = l.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(l.warnings.len(), 1);
}

#[test]
fn a_missing_file_is_an_open_error() {
    let e = services_from_files(&["/no/such/web.json".to_string()]).unwrap_err();
    assert_eq!(
        e,
        "config: Open failed on /no/such/web.json. open /no/such/web.json: no such file or directory"
    );
}

#[test]
fn field_names_for_the_api() {
    assert_eq!(
        api_field_name("destination_service_id"),
        "DestinationServiceID"
    );
    assert_eq!(
        api_field_name("local_bind_socket_path"),
        "LocalBindSocketPath"
    );
    assert_eq!(api_field_name("json_format"), "JSONFormat");
    assert_eq!(api_field_name("DestinationName"), "DestinationName");
    assert_eq!(norm("Enable_Tag_Override"), "enabletagoverride");
}
