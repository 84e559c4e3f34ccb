//! The JSON shapes against catalog.md / health.md (Consul's structs, field order included).

use super::*;
use lotse_core::catalog::{CheckStatus, Weights};

fn text<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap()
}

fn node_row() -> Node {
    Node {
        id: "40e4a748-2192-161a-0510-9bf59fe950b5".into(),
        name: "n1".into(),
        address: "10.0.0.1".into(),
        datacenter: "dc1".into(),
        create_index: 5,
        modify_index: 6,
        ..Node::default()
    }
}

fn service_row() -> Service {
    Service {
        id: "web1".into(),
        name: "web".into(),
        port: 8080,
        weights: Weights::default(),
        create_index: 10,
        modify_index: 11,
        ..Service::default()
    }
}

#[test]
fn a_node_without_tagged_addresses_or_meta_has_nulls() {
    assert_eq!(
        text(&node(&node_row())),
        r#"{"ID":"40e4a748-2192-161a-0510-9bf59fe950b5","Node":"n1","Address":"10.0.0.1","Datacenter":"dc1","TaggedAddresses":null,"Meta":null,"CreateIndex":5,"ModifyIndex":6}"#
    );
    let mut n = node_row();
    n.meta.insert("rack".into(), "r1".into());
    n.tagged_addresses.insert("lan".into(), "10.0.0.1".into());
    let v = serde_json::to_value(node(&n)).unwrap();
    assert_eq!(v["Meta"]["rack"], "r1");
    assert_eq!(v["TaggedAddresses"]["lan"], "10.0.0.1");
}

#[test]
fn a_service_node_has_consuls_fields_in_go_order() {
    let json = text(&service_node(&node_row(), &service_row()));
    assert_eq!(
        json,
        concat!(
            r#"{"ID":"40e4a748-2192-161a-0510-9bf59fe950b5","Node":"n1","Address":"10.0.0.1","#,
            r#""Datacenter":"dc1","TaggedAddresses":null,"NodeMeta":null,"ServiceKind":"","#,
            r#""ServiceID":"web1","ServiceName":"web","ServiceTags":[],"ServiceAddress":"","#,
            r#""ServiceWeights":{"Passing":1,"Warning":1},"ServiceMeta":{},"ServicePort":8080,"#,
            r#""ServiceSocketPath":"","ServiceEnableTagOverride":false,"#,
            r#""ServiceProxy":{"Mode":"","MeshGateway":{},"Expose":{}},"ServiceConnect":{},"#,
            r#""ServiceLocality":null,"CreateIndex":10,"ModifyIndex":11}"#
        )
    );
}

#[test]
fn service_tagged_addresses_appear_only_when_set() {
    let mut s = service_row();
    s.tagged_addresses.insert(
        "lan_ipv4".into(),
        ServiceAddress {
            address: "1.2.3.4".into(),
            port: 80,
        },
    );
    let v = serde_json::to_value(service_node(&node_row(), &s)).unwrap();
    assert_eq!(
        v["ServiceTaggedAddresses"],
        serde_json::json!({"lan_ipv4": {"Address": "1.2.3.4", "Port": 80}})
    );
    let v = serde_json::to_value(node_service(&s)).unwrap();
    assert_eq!(v["TaggedAddresses"]["lan_ipv4"]["Port"], 80);
}

#[test]
fn a_node_service_omits_kind_port_and_socket_path_when_zero() {
    let mut s = service_row();
    assert_eq!(
        text(&node_service(&s)),
        concat!(
            r#"{"ID":"web1","Service":"web","Tags":[],"Address":"","Meta":null,"Port":8080,"#,
            r#""Weights":{"Passing":1,"Warning":1},"EnableTagOverride":false,"#,
            r#""Proxy":{"Mode":"","MeshGateway":{},"Expose":{}},"Connect":{},"PeerName":"","#,
            r#""CreateIndex":10,"ModifyIndex":11}"#
        )
    );
    s.port = 0;
    s.kind = "connect-proxy".into();
    let v = serde_json::to_value(node_service(&s)).unwrap();
    assert!(v.get("Port").is_none());
    assert_eq!(v["Kind"], "connect-proxy");
    // The store's own form (txn results) leaves empty tags as Go's nil.
    assert_eq!(
        serde_json::to_value(stored_node_service(&s)).unwrap()["Tags"],
        Value::Null
    );
}

use serde_json::Value;

#[test]
fn a_health_check_has_empty_service_tags_and_an_empty_definition() {
    let mut c = HealthCheck::new("n1", "serfHealth", "Serf Health Status");
    c.status = CheckStatus::Passing;
    c.output = "Agent alive and reachable".into();
    c.create_index = 12;
    c.modify_index = 40;
    assert_eq!(
        text(&health_check(&c)),
        concat!(
            r#"{"Node":"n1","CheckID":"serfHealth","Name":"Serf Health Status","Status":"passing","#,
            r#""Notes":"","Output":"Agent alive and reachable","ServiceID":"","ServiceName":"","#,
            r#""ServiceTags":[],"Type":"","Interval":"","Timeout":"","ExposedPort":0,"#,
            r#""Definition":{},"CreateIndex":12,"ModifyIndex":40}"#
        )
    );
    c.definition_json = r#"{"Interval":"10s","HTTP":"http://x/"}"#.into();
    assert!(
        text(&health_check(&c)).contains(r#""Definition":{"Interval":"10s","HTTP":"http://x/"}"#)
    );
}

#[test]
fn a_stored_proxy_is_written_in_go_order_with_its_zero_fields() {
    let mut s = service_row();
    // As another writer may store it: keys sorted, Mode and Expose missing.
    s.proxy_json =
        r#"{"DestinationServiceName":"web","LocalServicePort":8080,"TransparentProxy":{"DialedDirectly":true}}"#
            .into();
    s.connect_json = r#"{"PeerMeta":null,"Native":true}"#.into();
    let v = text(&node_service(&s));
    assert!(
        v.contains(concat!(
            r#""Proxy":{"TransparentProxy":{"DialedDirectly":true},"#,
            r#""DestinationServiceName":"web","LocalServicePort":8080,"Mode":"","#,
            r#""MeshGateway":{},"Expose":{}},"Connect":{"Native":true}"#
        )),
        "{v}"
    );
}

#[test]
fn a_service_entry_nests_node_service_and_checks() {
    let n = node_row();
    let s = service_row();
    let c = HealthCheck::new("n1", "service:web1", "Service 'web' check");
    let e = ServiceEntry {
        node: &n,
        service: &s,
        checks: vec![&c],
    };
    let v = serde_json::to_value(service_entry(&e)).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["Checks", "Node", "Service"]); // (a Value sorts them)
    assert!(text(&service_entry(&e)).starts_with(r#"{"Node":{"ID":"#));
    assert_eq!(v["Checks"][0]["Status"], "critical");
    assert_eq!(v["Service"]["Tags"], serde_json::json!([]));
}

#[test]
fn an_agent_service_has_the_agents_fields() {
    let mut s = service_row();
    s.create_index = 0;
    s.modify_index = 0;
    assert_eq!(
        text(&agent_service(&s, "dc1")),
        concat!(
            r#"{"ID":"web1","Service":"web","Tags":[],"Meta":{},"Port":8080,"Address":"","#,
            r#""Weights":{"Passing":1,"Warning":1},"EnableTagOverride":false,"Datacenter":"dc1"}"#
        )
    );
    s.kind = "connect-proxy".into();
    s.proxy_json = r#"{"DestinationServiceName":"web"}"#.into();
    let v = serde_json::to_value(agent_service(&s, "dc1")).unwrap();
    assert_eq!(v["Proxy"]["DestinationServiceName"], "web");
    assert_eq!(v["Proxy"]["Mode"], "");
    assert!(v.get("Connect").is_none());
}

#[test]
fn ordered_json_round_trips_keeping_key_order() {
    let t = r#"{"b":1,"a":[true,null,{"z":"x","y":1.5}],"c":-3}"#;
    let o: Ordered = serde_json::from_str(t).unwrap();
    assert_eq!(serde_json::to_string(&o).unwrap(), t);
}
