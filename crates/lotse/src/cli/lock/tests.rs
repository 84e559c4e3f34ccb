//! Unit tests for `lotse lock`.

use super::*;
use crate::cli::flags::argv;

#[test]
fn keys_and_names() {
    assert_eq!(lock_key("service/web"), "service/web/.lock");
    assert_eq!(lock_key("service/web/"), "service/web/.lock");
    assert_eq!(lock_key(""), ".lock");
    assert_eq!(
        default_session_name(&argv(&["echo", "hi"]), "p"),
        "Lotse lock for 'echo hi' at 'p'"
    );
}

#[test]
fn exit_descriptions_like_go() {
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        describe_exit(&ExitStatus::from_raw(3 << 8)),
        "exit status 3"
    );
    assert_eq!(describe_exit(&ExitStatus::from_raw(9)), "signal: killed");
    assert_eq!(
        describe_exit(&ExitStatus::from_raw(15)),
        "signal: terminated"
    );
}

#[test]
fn argument_errors_exit_1_before_any_request() {
    // No agent listens on port 1; these fail on arguments first.
    let addr = "-http-addr=127.0.0.1:1";
    assert_eq!(run(&argv(&[addr, "only-prefix"])), 1);
    assert_eq!(run(&argv(&[addr, "-n=0", "p", "true"])), 1);
    assert_eq!(run(&argv(&[addr, "-timeout=-1s", "p", "true"])), 1);
    assert_eq!(run(&argv(&[addr, "-monitor-retry=-1", "p", "true"])), 1);
    assert_eq!(run(&argv(&[addr, "-timeout=abc", "p", "true"])), 1);
    // And with arguments right, an unreachable agent is an error too.
    assert_eq!(run(&argv(&[addr, "p", "true"])), 1);
}

#[test]
fn child_arguments_are_not_parsed_as_flags() {
    let a: LockArgs = flags::parse(&argv(&["-verbose", "p", "ls", "-verbose", "-n", "2"])).unwrap();
    assert!(a.verbose);
    assert_eq!(a.limit, 1);
    assert_eq!(a.args, argv(&["p", "ls", "-verbose", "-n", "2"]));
    let a: LockArgs =
        flags::parse(&argv(&["-shell=false", "-timeout", "1m", "-n=1", "p", "x"])).unwrap();
    assert!(!a.shell);
    assert_eq!(a.timeout, 60_000_000_000);
}
