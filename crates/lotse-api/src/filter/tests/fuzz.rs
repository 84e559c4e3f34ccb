//! Property tests: no input panics the parser or the evaluator, and the connectives obey
//! boolean logic over any item. `fuzz_filter` is the same as a bolero target: random under
//! `cargo test`, coverage-guided with
//!
//! ```sh
//! cargo bolero test filter::tests::fuzz::fuzz_filter -p lotse-api --sanitizer NONE -T 60s
//! ```
//!
//! (seeds: `src/filter/tests/__fuzz__/filter__tests__fuzz__filter/corpus`).

use proptest::prelude::*;

use super::*;

/// Words the token soup is made of: valid and broken pieces of every construct.
const VOCABULARY: &[&str] = &[
    "Service.Service",
    "Service.Port",
    "Service.Tags",
    "Service.Meta.env",
    "Node.Meta[\"rack\"]",
    "Checks.Status",
    "Checks",
    "Node.Meta",
    "Checks.Definition",
    "Service",
    "Bogus",
    "Service.",
    "Node.Meta[",
    "]",
    "[",
    ".",
    "and",
    "or",
    "not",
    "in",
    "contains",
    "matches",
    "is",
    "empty",
    "==",
    "!=",
    "=",
    "!",
    "(",
    ")",
    "web",
    "8080",
    "-1",
    "0.5",
    "1e3",
    "08",
    "-",
    "\"web\"",
    "\"a\\\"b\"",
    "\"\\u00e9\"",
    "\"\\x80\"",
    "\"unterminated",
    "`raw`",
    "`open",
    "\"(\"",
    "\"^w\"",
    "true",
    "&",
    "é",
    "\n",
    "\t",
];

fn soup() -> impl Strategy<Value = String> {
    let word = proptest::sample::select(VOCABULARY);
    let sep = prop_oneof![Just(" "), Just(""), Just("  ")];
    proptest::collection::vec((word, sep), 0..24).prop_map(|parts| {
        parts
            .into_iter()
            .flat_map(|(w, s)| [w, s])
            .collect::<String>()
    })
}

/// Arbitrary JSON whose object keys are mostly the fixture's field names, so that walks go
/// deep into mistyped and partial data.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-z ]{0,6}".prop_map(Value::from),
        Just(Value::from("web")),
        Just(Value::from("passing")),
    ];
    let key = proptest::sample::select(
        &[
            "Service",
            "Node",
            "Checks",
            "Status",
            "Port",
            "Tags",
            "Meta",
            "env",
            "rack",
            "Weights",
            "Passing",
            "TaggedAddresses",
            "lan_ipv4",
            "Address",
            "x",
        ][..],
    );
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(key.clone().prop_map(String::from), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Valid atoms over [`health_shape`], one per operator family and selector kind.
const ATOMS: &[&str] = &[
    "Service.Service == web",
    "Service.Port != 8080",
    "primary in Service.Tags",
    "Service.Tags is empty",
    "rack in Node.Meta",
    "Node.Meta.rack == r1",
    "Node.Meta.env != x",
    "Checks.Status == passing",
    "Checks.Status != passing",
    "Checks is not empty",
    "Service.ID matches \"^web\"",
    "Service.ID not matches \"1$\"",
    "Service.TaggedAddresses.lan_ipv4.Port == 8080",
    "Service.EnableTagOverride == false",
    "Service.Weights.Passing == 10",
];

fn atom() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(ATOMS)
}

fn item() -> impl Strategy<Value = Value> {
    prop_oneof![Just(web_entry()), json_value()]
}

proptest! {
    #[test]
    fn parsing_any_text_never_panics(text in any::<String>()) {
        let _ = Filter::parse(&text, &health_shape());
    }

    #[test]
    fn parsing_token_soup_never_panics_and_what_parses_evaluates(
        text in soup(),
        value in json_value(),
    ) {
        if let Ok(filter) = Filter::parse(&text, &health_shape()) {
            let _ = filter.matches(&value);
            let _ = filter.matches(&web_entry());
        }
    }

    #[test]
    fn evaluating_any_item_never_panics(a in atom(), value in json_value()) {
        let filter = Filter::parse(a, &health_shape());
        prop_assert!(filter.is_ok());
        if let Ok(filter) = filter {
            let _ = filter.matches(&value);
        }
    }

    #[test]
    fn connectives_obey_boolean_logic(a in atom(), b in atom(), value in item()) {
        let shape = health_shape();
        let ev = |expr: &str| eval(&shape, &value, expr);
        let (x, y) = (ev(a), ev(b));
        prop_assert_eq!(ev(&format!("not {a}")), !x);
        prop_assert_eq!(ev(&format!("({a})")), x);
        prop_assert_eq!(ev(&format!("{a} and {b}")), x && y);
        prop_assert_eq!(ev(&format!("{a} or {b}")), x || y);
        prop_assert_eq!(ev(&format!("not ({a} or {b})")), !x && !y);
    }
}

/// Any text as a `?filter=` expression over the health shape: a filter or an error with a
/// message (a syntax error located at line and column 1 or later), never a panic. What parses
/// evaluates over a real entry and over an empty one, and its negation parses (unless that
/// crosses a size limit) and answers the opposite.
#[test]
fn fuzz_filter() {
    let shape = health_shape();
    let items = [web_entry(), json!({})];
    bolero::check!().for_each(|input: &[u8]| {
        let expr = String::from_utf8_lossy(input);
        let filter = match Filter::parse(&expr, &shape) {
            Ok(f) => f,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                match e {
                    FilterError::Syntax { line, column, .. } => {
                        assert!(line >= 1 && column >= 1, "{e:?}")
                    }
                    FilterError::TooLong { len, max } => assert!(len > max),
                    _ => {}
                }
                return;
            }
        };
        let negated = match Filter::parse(&format!("not ({expr})"), &shape) {
            Ok(n) => Some(n),
            Err(FilterError::TooDeep { .. } | FilterError::TooLong { .. }) => None,
            Err(e) => panic!("{expr:?} parses but its negation does not: {e}"),
        };
        for item in &items {
            let m = filter.matches(item);
            if let Some(n) = &negated {
                assert_eq!(n.matches(item), !m, "{expr:?} over {item}");
            }
        }
    });
}
