use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use super::*;

const BUDGET: Duration = Duration::from_secs(10);

fn op(process: u64, invoke: u64, complete: Option<u64>, call: Call) -> Op {
    Op {
        process,
        key: "k".into(),
        invoke,
        complete,
        outcome: if complete.is_some() {
            Outcome::Ok
        } else {
            Outcome::Info
        },
        call,
    }
}

fn read(v: Option<&str>) -> Call {
    Call::Read {
        value: v.map(str::to_string),
        mode: None,
    }
}
fn write(v: &str) -> Call {
    Call::Write { value: v.into() }
}
fn cas(expect: &str, value: &str, result: Option<bool>) -> Call {
    Call::Cas {
        expect: expect.into(),
        value: value.into(),
        result,
    }
}
fn acquire(s: &str, result: Option<bool>) -> Call {
    Call::Acquire {
        session: s.into(),
        result,
    }
}
fn release(s: &str, result: Option<bool>) -> Call {
    Call::Release {
        session: s.into(),
        result,
    }
}

fn invalidate(s: impl Into<String>) -> Call {
    Call::Invalidate {
        session: s.into(),
        held: false,
        lock_delay_ms: 0,
    }
}

fn verdict(ops: &[Op]) -> Verdict {
    check_key(ops, BUDGET).0
}

#[test]
fn a_sequential_history_that_reads_its_writes_is_linearizable() {
    let ops = [
        op(1, 0, Some(1), read(None)),
        op(1, 2, Some(3), write("a")),
        op(2, 4, Some(5), read(Some("a"))),
        op(2, 6, Some(7), cas("a", "b", Some(true))),
        op(1, 8, Some(9), cas("a", "c", Some(false))),
        op(1, 10, Some(11), read(Some("b"))),
    ];
    assert_eq!(verdict(&ops), Verdict::Linearizable);
}

#[test]
fn a_read_after_an_acknowledged_write_that_misses_it_is_an_anomaly() {
    let ops = [
        op(1, 0, Some(1), write("a")),
        op(2, 2, Some(3), write("b")),
        op(3, 4, Some(5), read(Some("a"))),
    ];
    match verdict(&ops) {
        Verdict::Anomaly { stuck, prefix } => {
            assert_eq!(
                stuck, 2,
                "the stale read is the operation no order explains"
            );
            assert_eq!(prefix, vec![0, 1]);
        }
        v => panic!("expected an anomaly, got {v:?}"),
    }
}

#[test]
fn a_read_concurrent_with_a_write_may_see_either_value() {
    for seen in [None, Some("a")] {
        let ops = [
            op(1, 0, Some(10), write("a")),
            op(2, 5, Some(6), read(seen)),
        ];
        assert_eq!(verdict(&ops), Verdict::Linearizable, "read saw {seen:?}");
    }
}

#[test]
fn operations_touching_at_one_instant_count_as_concurrent() {
    let ops = [op(1, 0, Some(5), write("a")), op(2, 5, Some(6), read(None))];
    assert_eq!(verdict(&ops), Verdict::Linearizable);
}

#[test]
fn an_unknown_write_may_take_effect_late_or_never() {
    for later in [None, Some("a")] {
        let ops = [
            op(1, 0, None, write("a")),
            op(2, 100, Some(101), read(later)),
            op(2, 200, Some(201), read(later)),
        ];
        assert_eq!(verdict(&ops), Verdict::Linearizable, "reads saw {later:?}");
    }
    // But once seen, it cannot be unseen.
    let ops = [
        op(1, 0, None, write("a")),
        op(2, 100, Some(101), read(Some("a"))),
        op(2, 200, Some(201), read(None)),
    ];
    assert!(matches!(verdict(&ops), Verdict::Anomaly { .. }));
}

#[test]
fn two_successful_compare_and_sets_from_one_value_are_an_anomaly() {
    let ops = [
        op(1, 0, Some(1), write("a")),
        op(2, 2, Some(10), cas("a", "b", Some(true))),
        op(3, 2, Some(10), cas("a", "c", Some(true))),
    ];
    assert!(matches!(verdict(&ops), Verdict::Anomaly { .. }));
}

#[test]
fn a_lock_held_by_two_sessions_at_once_is_an_anomaly() {
    let ok = [
        op(1, 0, Some(1), acquire("s1", Some(true))),
        op(2, 2, Some(3), acquire("s2", Some(false))),
        op(1, 4, Some(5), acquire("s1", Some(true))),
        op(1, 6, Some(7), release("s1", Some(true))),
        op(2, 8, Some(9), release("s2", Some(false))),
        op(2, 10, Some(11), acquire("s2", Some(true))),
    ];
    assert_eq!(verdict(&ok), Verdict::Linearizable);
    let twice = [
        op(1, 0, Some(1), acquire("s1", Some(true))),
        op(2, 2, Some(3), acquire("s2", Some(true))),
    ];
    assert!(matches!(verdict(&twice), Verdict::Anomaly { .. }));
    // An unknown release may have freed it.
    let maybe = [
        op(1, 0, Some(1), acquire("s1", Some(true))),
        op(1, 2, None, release("s1", None)),
        op(2, 5, Some(6), acquire("s2", Some(true))),
    ];
    assert_eq!(verdict(&maybe), Verdict::Linearizable);
}

#[test]
fn an_invalidated_session_frees_its_lock_and_only_its_own() {
    let freed = [
        op(1, 0, Some(1), acquire("s1", Some(true))),
        op(1, 2, Some(3), invalidate("s1")),
        op(2, 4, Some(5), acquire("s2", Some(true))),
    ];
    assert_eq!(verdict(&freed), Verdict::Linearizable);
    let not_holder = [
        op(1, 0, Some(1), acquire("s1", Some(true))),
        op(2, 2, Some(3), invalidate("s2")),
        op(3, 4, Some(5), acquire("s3", Some(true))),
    ];
    assert!(matches!(verdict(&not_holder), Verdict::Anomaly { .. }));
    // The invalidated session cannot release what it no longer holds.
    let released_after = [
        op(1, 0, Some(1), acquire("s1", Some(true))),
        op(1, 2, Some(3), invalidate("s1")),
        op(1, 4, Some(5), release("s1", Some(true))),
    ];
    assert!(matches!(verdict(&released_after), Verdict::Anomaly { .. }));
}

#[test]
fn a_lock_under_lock_delay_may_refuse_until_taken() {
    let delayed = Call::Invalidate {
        session: "s1".into(),
        held: true,
        lock_delay_ms: 1000,
    };
    let ok = [
        op(1, 0, Some(1), acquire("s1", Some(true))),
        op(1, 2, Some(3), delayed.clone()),
        op(2, 4, Some(5), acquire("s2", Some(false))),
        op(3, 6, None, acquire("s3", None)),
        op(2, 8, Some(9), acquire("s2", Some(true))),
        op(3, 10, Some(11), acquire("s3", Some(false))),
    ];
    assert_eq!(verdict(&ok), Verdict::Linearizable);
    // Once taken it is an ordinary lock again: nobody else may take it.
    let twice = [
        op(1, 0, Some(1), acquire("s1", Some(true))),
        op(1, 2, Some(3), delayed),
        op(2, 4, Some(5), acquire("s2", Some(true))),
        op(3, 6, Some(7), acquire("s3", Some(true))),
    ];
    assert!(matches!(verdict(&twice), Verdict::Anomaly { .. }));
}

/// With clocks that jump, a lock can be taken inside a delay, released, and then refused by
/// the same delay: a refusal, never a second holder.
#[test]
fn a_delay_outlives_a_holder_who_took_the_lock_inside_it() {
    let delayed = Call::Invalidate {
        session: "s1".into(),
        held: true,
        lock_delay_ms: 1000,
    };
    let ops = [
        op(1, 0, Some(1), acquire("s1", Some(true))),
        op(1, 2, Some(3), delayed),
        op(2, 4, Some(5), acquire("s2", Some(true))),
        op(2, 6, Some(7), acquire("s2", Some(false))),
        op(2, 8, Some(9), release("s2", Some(true))),
        op(3, 10, Some(11), acquire("s3", Some(false))),
        op(3, 12, Some(13), release("s3", Some(false))),
    ];
    assert_eq!(verdict(&ops), Verdict::Linearizable);
}

const MS: u64 = 1_000_000;

/// s1 holds the lock and is invalidated at [100, 110] ms with a 1 s lock-delay; s2 then
/// acquires at [start, end] ms.
fn lock_delay_history(start: u64, end: u64, held: bool) -> BTreeMap<String, Vec<Op>> {
    let ops = vec![
        op(1, 0, Some(MS), acquire("s1", Some(true))),
        op(
            1,
            100 * MS,
            Some(110 * MS),
            Call::Invalidate {
                session: "s1".into(),
                held,
                lock_delay_ms: 1000,
            },
        ),
        op(2, start * MS, Some(end * MS), acquire("s2", Some(true))),
    ];
    BTreeMap::from([("k".to_string(), ops)])
}

#[test]
fn an_acquire_proven_inside_the_lock_delay_is_a_breach() {
    let breaches = check_lock_delays(&lock_delay_history(200, 250, true), MS);
    assert_eq!(breaches.len(), 1);
    assert_eq!(breaches[0].acquire.call, acquire("s2", Some(true)));
    let text = breaches[0].to_string();
    assert!(text.contains("inside its 1000 ms lock-delay"), "{text}");
    // The same history is linearizable: only the real-time rule catches it.
    assert_eq!(
        verdict(&lock_delay_history(200, 250, true)["k"]),
        Verdict::Linearizable
    );
}

#[test]
fn lock_delay_flags_only_what_the_history_proves() {
    // After the delay (invoked at 100 ms, so over by 1100 ms).
    assert!(check_lock_delays(&lock_delay_history(1050, 1101, true), MS).is_empty());
    // Within the slack of the delay's end.
    assert!(check_lock_delays(&lock_delay_history(1050, 1099, true), 2 * MS).is_empty());
    // Overlapping the invalidation: it may have taken effect first.
    assert!(check_lock_delays(&lock_delay_history(105, 150, true), MS).is_empty());
    // The client did not know its session held the lock.
    assert!(check_lock_delays(&lock_delay_history(200, 250, false), MS).is_empty());
}

#[test]
fn history_lines_are_split_by_key_and_bad_lines_are_named() {
    let text = r#"
{"process":1,"key":"a","invoke":1,"complete":2,"outcome":"ok","f":"write","value":"1"}
{"process":2,"key":"b","invoke":1,"complete":2,"outcome":"ok","f":"read","value":null}
{"process":2,"key":"b","invoke":3,"outcome":"info","f":"read"}
{"process":3,"key":"a","invoke":3,"outcome":"info","f":"cas","expect":"1","value":"2"}
{"process":4,"key":"a","invoke":3,"complete":4,"outcome":"fail","f":"write","value":"9"}
"#;
    let h = load_history(text).expect("valid history");
    assert_eq!(h["a"].len(), 2, "the failed write is dropped");
    assert_eq!(h["b"].len(), 1, "the unanswered read is dropped");
    let err = load_history(
        r#"{"process":1,"key":"a","invoke":5,"complete":4,"outcome":"ok","f":"read"}"#,
    )
    .expect_err("completion before invocation");
    assert!(err.to_string().contains("line 1"), "{err}");
    let err = load_history(r#"{"process":1,"key":"a","invoke":1,"complete":4,"outcome":"ok","f":"cas","expect":"1","value":"2"}"#)
        .expect_err("an ok cas without its result");
    assert!(err.to_string().contains("needs its result"), "{err}");
    assert!(load_history("{not json").is_err());
}

/// The definition, by brute force: some order of all operations that respects real time
/// (a before b when a answered strictly before b was invoked) explains every answer.
fn brute_force(ops: &[Op]) -> bool {
    fn go(ops: &[Op], done: &mut Vec<bool>, state: &State, left: usize) -> bool {
        if left == 0 {
            return true;
        }
        for i in 0..ops.len() {
            if done[i] {
                continue;
            }
            // i may go next only if no pending operation had to come before it.
            let blocked =
                (0..ops.len()).any(|j| !done[j] && j != i && ops[j].deadline() < ops[i].invoke);
            if blocked {
                continue;
            }
            if let Some(next) = ops[i].call.step(state) {
                done[i] = true;
                if go(ops, done, &next, left - 1) {
                    return true;
                }
                done[i] = false;
            }
        }
        false
    }
    go(ops, &mut vec![false; ops.len()], &None, ops.len())
}

fn arb_call() -> impl Strategy<Value = Call> {
    let v = prop_oneof![Just("a".to_string()), Just("b".to_string())];
    let maybe_v = prop::option::of(v.clone());
    let result = prop::option::of(any::<bool>());
    prop_oneof![
        maybe_v.prop_map(|value| Call::Read { value, mode: None }),
        v.clone().prop_map(|value| Call::Write { value }),
        (v.clone(), v.clone(), result.clone()).prop_map(|(expect, value, result)| Call::Cas {
            expect,
            value,
            result
        }),
        (v.clone(), result.clone()).prop_map(|(session, result)| Call::Acquire { session, result }),
        (v.clone(), result).prop_map(|(session, result)| Call::Release { session, result }),
        (v, prop_oneof![Just(0u64), Just(1000u64)]).prop_map(|(session, lock_delay_ms)| {
            Call::Invalidate {
                session,
                held: false,
                lock_delay_ms,
            }
        }),
    ]
}

fn arb_op() -> impl Strategy<Value = Op> {
    (0u64..20, 0u64..10, any::<bool>(), arb_call()).prop_map(|(invoke, len, answered, call)| {
        let answered = answered || call.is_read();
        let call = if answered {
            with_some_answer(call)
        } else {
            without_answer(call)
        };
        Op {
            process: 0,
            key: "k".into(),
            invoke,
            complete: answered.then_some(invoke + len),
            outcome: if answered { Outcome::Ok } else { Outcome::Info },
            call,
        }
    })
}

fn with_some_answer(call: Call) -> Call {
    match call {
        Call::Cas {
            expect,
            value,
            result,
        } => Call::Cas {
            expect,
            value,
            result: Some(result.unwrap_or(true)),
        },
        Call::Acquire { session, result } => Call::Acquire {
            session,
            result: Some(result.unwrap_or(true)),
        },
        Call::Release { session, result } => Call::Release {
            session,
            result: Some(result.unwrap_or(false)),
        },
        c => c,
    }
}

fn without_answer(call: Call) -> Call {
    match call {
        Call::Cas { expect, value, .. } => Call::Cas {
            expect,
            value,
            result: None,
        },
        Call::Acquire { session, .. } => Call::Acquire {
            session,
            result: None,
        },
        Call::Release { session, .. } => Call::Release {
            session,
            result: None,
        },
        c => c,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The search agrees with the definition on small random histories, both ways.
    #[test]
    fn the_search_agrees_with_brute_force(ops in prop::collection::vec(arb_op(), 0..7)) {
        let expected = brute_force(&ops);
        let got = verdict(&ops);
        prop_assert_eq!(got == Verdict::Linearizable, expected, "history: {:?}, verdict {:?}", ops, got);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Histories produced by running operations atomically at some instant inside their
    /// interval are always linearizable. Shaped like the recorded ones: a few operations in
    /// flight at once, and about one in eight with an unknown outcome (each of those stays
    /// pending to the end of the history, and the search grows with their number).
    #[test]
    fn histories_of_an_atomic_object_pass(
        plan in prop::collection::vec(
            (0u64..4000, 0u64..60, 0u64..60, arb_call(), prop::bool::weighted(0.875)),
            1..80,
        )
    ) {
        let mut timed: Vec<(u64, u64, u64, Call, bool)> = plan
            .into_iter()
            .map(|(at, before, after, call, known)| (at, at.saturating_sub(before), at + after, call, known))
            .collect();
        timed.sort_by_key(|t| t.0);
        let mut state: State = None;
        let mut ops = Vec::new();
        for (_, invoke, complete, call, known) in timed {
            let actual = actual_answer(&call, &state);
            state = actual.step(&state).expect("the actual answer is accepted");
            let known = known || actual.is_read();
            ops.push(Op {
                process: 0,
                key: "k".into(),
                invoke,
                complete: known.then_some(complete),
                outcome: if known { Outcome::Ok } else { Outcome::Info },
                call: if known { actual } else { without_answer(actual) },
            });
        }
        prop_assert_eq!(verdict(&ops), Verdict::Linearizable);
    }
}

/// The answer an atomic object gives to `call` in `state`.
fn actual_answer(call: &Call, state: &State) -> Call {
    match call.clone() {
        Call::Read { .. } => Call::Read {
            value: state.clone(),
            mode: None,
        },
        Call::Write { value } => Call::Write { value },
        Call::Cas { expect, value, .. } => {
            let r = state.as_deref() == Some(expect.as_str());
            Call::Cas {
                expect,
                value,
                result: Some(r),
            }
        }
        Call::Acquire { session, .. } => {
            let r = state.as_ref().is_none_or(|h| *h == session);
            Call::Acquire {
                session,
                result: Some(r),
            }
        }
        Call::Release { session, .. } => {
            let r = state.as_deref() == Some(session.as_str());
            Call::Release {
                session,
                result: Some(r),
            }
        }
        c @ Call::Invalidate { .. } => c,
    }
}
