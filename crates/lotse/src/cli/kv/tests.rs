//! Unit tests for the `lotse kv` commands.

use super::get::pretty_pair;
use super::transfer::{export_json, go_path_clean, import_key};
use super::*;

fn pair() -> KvPair {
    KvPair {
        key: "foo".into(),
        create_index: 12,
        modify_index: 13,
        lock_index: 0,
        flags: 0,
        value: Some(B64.encode("bar")),
        session: None,
    }
}

#[test]
fn detailed_output_matches_consul() {
    let got = String::from_utf8(pretty_pair(&pair(), false, false)).unwrap();
    assert_eq!(
        got,
        "CreateIndex      12\nFlags            0\nKey              foo\nLockIndex        0\n\
         ModifyIndex      13\nSession          -\nValue            bar"
    );
    let got = String::from_utf8(pretty_pair(&pair(), true, false)).unwrap();
    assert!(got.ends_with("Value            YmFy"), "{got}");
    let mut p = pair();
    p.session = Some("abc".into());
    let got = String::from_utf8(pretty_pair(&p, false, true)).unwrap();
    assert!(got.ends_with("Session          abc\n"), "{got:?}");
    assert!(!got.contains("Value"));
}

#[test]
fn export_is_tab_indented_base64() {
    let mut empty = pair();
    empty.key = "e".into();
    empty.value = None;
    empty.flags = 42;
    assert_eq!(
        export_json(&[pair(), empty]),
        "[\n\t{\n\t\t\"key\": \"foo\",\n\t\t\"flags\": 0,\n\t\t\"value\": \"YmFy\"\n\t},\n\t{\n\t\t\"key\": \"e\",\n\t\t\"flags\": 42,\n\t\t\"value\": \"\"\n\t}\n]"
    );
    assert_eq!(export_json(&[]), "[]");
}

#[test]
fn import_keys_join_like_go() {
    assert_eq!(import_key("", "a/b"), "a/b");
    assert_eq!(import_key("pre", "a/b"), "pre/a/b");
    assert_eq!(import_key("pre/", "/a//b"), "pre/a/b");
    assert_eq!(import_key("pre", "dir/"), "pre/dir/");
    assert_eq!(import_key("", ""), "");
    assert_eq!(go_path_clean("a/../b/./c/"), "b/c");
    assert_eq!(go_path_clean("/../a"), "/a");
}
