//! The watch plan, the KV shape, index resets and the handler.

use super::*;
use crate::cli::flags::argv;

fn args(a: &[&str]) -> WatchArgs {
    flags::parse(&argv(a)).expect("parses")
}

fn plan_of(a: &[&str]) -> Result<View, String> {
    let a = args(a);
    let p = (!a.passingonly.is_empty()).then(|| parse_bool(&a.passingonly).unwrap());
    plan(&a, p, a.http.stale)
}

#[test]
fn plans_check_parameters_as_consul() {
    assert_eq!(
        plan_of(&["-type", "key", "-key", "a/b"]),
        Ok(View::Key("a/b".into()))
    );
    assert_eq!(
        plan_of(&["-type", "key"]).unwrap_err(),
        "Must specify a single key to watch"
    );
    assert_eq!(
        plan_of(&["-type", "key", "-key", "a", "-prefix", "b", "-name", "x"]).unwrap_err(),
        "Invalid parameters: [name prefix]"
    );
    assert_eq!(
        plan_of(&["-type", "event", "-stale"]).unwrap_err(),
        "Invalid parameters: [stale]"
    );
    assert_eq!(
        plan_of(&["-type", "checks"]),
        Ok(View::Checks {
            service: String::new(),
            state: "any".into()
        })
    );
    assert_eq!(
        plan_of(&["-type", "checks", "-service", "a", "-state", "passing"]).unwrap_err(),
        "Cannot specify service and state"
    );
    assert_eq!(
        plan_of(&[
            "-type",
            "service",
            "-service",
            "web",
            "-tag",
            "v1",
            "-passingonly",
            "true"
        ]),
        Ok(View::Service {
            name: "web".into(),
            tag: "v1".into(),
            passing_only: true
        })
    );
    assert_eq!(
        plan_of(&["-type", "bogus"]).unwrap_err(),
        "Unsupported watch type: bogus"
    );
    let a = args(&[
        "-type",
        "keyprefix",
        "-prefix",
        "x/",
        "-shell=false",
        "cat",
        "-n",
    ]);
    assert!(!a.shell);
    assert_eq!(a.args, vec!["cat", "-n"]);
}

#[test]
fn kv_pairs_marshal_in_the_go_clients_order() {
    let p: Vec<KvPair> = serde_json::from_str(
        r#"[{"LockIndex":0,"Key":"a","Flags":3,"Value":"eA==","CreateIndex":5,"ModifyIndex":6}]"#,
    )
    .unwrap();
    assert_eq!(
        to_json(&p[0]).unwrap(),
        r#"{"Key":"a","CreateIndex":5,"ModifyIndex":6,"LockIndex":0,"Flags":3,"Value":"eA==","Session":""}"#
    );
}

#[test]
fn an_index_that_goes_back_resets_the_wait() {
    assert_eq!(next_index(7, None), 7);
    assert_eq!(next_index(9, Some(7)), 9);
    assert_eq!(next_index(3, Some(7)), 0);
}

#[test]
fn handler_gets_stdin_and_the_index_and_failures_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "cat > {} && echo \"$CONSUL_INDEX\" >> {}",
        out.display(),
        out.display()
    );
    run_handler(&[script], true, 42, "{\"a\":1}\n").unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"a\":1}\n42\n");
    assert_eq!(
        run_handler(&["exit 3".into()], true, 1, "").unwrap_err(),
        "Error executing handler: exit status 3"
    );
    assert!(run_handler(&["/no/such/handler".into()], false, 1, "")
        .unwrap_err()
        .starts_with("Error starting handler"));
}
