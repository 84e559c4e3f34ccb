//! Parsing: forms, precedence, quoting, keywords, limits and every syntax error.

use super::*;
use crate::filter::{MAX_DEPTH, MAX_EXPR_LEN};

/// `T` is true and `F` false for [`web_entry`]; precedence is visible in the results.
const T: &str = "Service.Service == web";
const F: &str = "Service.Service == db";

fn logic(expr: &str) -> bool {
    let expr = expr.replace('T', T).replace('F', F);
    eval(&health_shape(), &web_entry(), &expr)
}

#[test]
fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
    let cases = [
        ("T or F and F", true),    // T or (F and F); (T or F) and F would be false
        ("F and F or T", true),    // (F and F) or T
        ("F and T or T", true),    // (F and T) or T
        ("not F and F", false),    // (not F) and F; not (F and F) would be true
        ("not T or T", true),      // (not T) or T; not (T or T) would be false
        ("(T or F) and F", false), // parentheses override
        ("not (F or F)", true),
        ("not not T", true),
        ("not not not T", false),
        ("T and T and T and F", false),
        ("F or F or F or T", true),
        ("((T))", true),
        ("( T )and( T )", true),
    ];
    let failures: Vec<_> = cases
        .iter()
        .filter(|(expr, want)| logic(expr) != *want)
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn whitespace_is_free_around_symbols() {
    let shape = health_shape();
    let item = web_entry();
    table(
        &shape,
        &item,
        &[
            ("Service.Service==web", true),
            ("  Service.Service\t==\r\n web  ", true),
            ("(Service.Port!=1)", true),
            ("not(Service.Port == 1)", true),
            ("\"primary\"in Service.Tags", true),
        ],
    );
}

#[test]
fn values_can_be_bare_words_numbers_or_quoted_strings() {
    let shape = misc_shape();
    let item = json!({"Name": "a.b", "Count": -1, "Ratio": 2.5, "Meta": {"k": "tab\there"}});
    table(
        &shape,
        &item,
        &[
            // A bare selector as a value means its dotted text.
            ("Name == a.b", true),
            ("Name == \"a.b\"", true),
            ("Name == `a.b`", true),
            ("Count == -1", true),
            ("Ratio == 2.5", true),
            ("Meta.k == \"tab\\there\"", true),
            // Raw strings do not expand escapes.
            ("Meta.k == `tab\\there`", false),
            ("Meta[\"k\"] == \"tab\\u0009here\"", true),
            ("Meta[ `k` ] == \"tab\\x09here\"", true),
            ("Meta.k == \"tab\\011here\"", true),
        ],
    );
}

#[test]
fn string_escapes_follow_go() {
    let shape = misc_shape();
    let cases = [
        (r#""\a\b\f\n\r\t\v\\""#, "\u{7}\u{8}\u{c}\n\r\t\u{b}\\"),
        (r#""\u00e9\U0001F600""#, "é😀"),
        (r#""say \"hi\"""#, "say \"hi\""),
        (r#""\x41\101""#, "AA"),
        ("`raw \\n \"quoted\"`", "raw \\n \"quoted\""),
        ("`cr\r\nlf`", "cr\nlf"),
        ("\"é ✓\"", "é ✓"),
    ];
    for (literal, decoded) in cases {
        let item = json!({ "Name": decoded });
        let expr = format!("Name == {literal}");
        assert!(
            eval(&shape, &item, &expr),
            "{expr:?} should equal {decoded:?}"
        );
    }
}

#[test]
fn keywords_are_not_reserved() {
    // bexpr's PEG grammar tries `not <expr>` first and falls back to `not` as a selector or
    // value; `and`, `in` and friends are ordinary names outside operator position.
    let shape = misc_shape();
    let item = misc_item();
    table(
        &shape,
        &item,
        &[
            ("not == x", true),
            ("not != x", false),
            ("and == z", true),
            ("not in Tags", true),      // the string "not" is in Tags
            ("not not in Tags", false), // not ("not" in Tags)
            ("y in in", true),          // the string "y" is in the field `in`
            ("Name == not", false),
            ("Name == and or Name == alpha", true),
        ],
    );
}

#[test]
fn nesting_up_to_the_limit_parses_and_beyond_is_refused() {
    let shape = health_shape();
    let nested = |n: usize| format!("{}{T}{}", "(".repeat(n), ")".repeat(n));
    assert!(eval(&shape, &web_entry(), &nested(MAX_DEPTH)));
    assert_eq!(
        error(&shape, &nested(MAX_DEPTH + 1)),
        FilterError::TooDeep { max: MAX_DEPTH }
    );
    let nots = |n: usize| format!("{}{T}", "not ".repeat(n));
    assert!(eval(&shape, &web_entry(), &nots(MAX_DEPTH)));
    assert_eq!(
        error(&shape, &nots(MAX_DEPTH + 1)),
        FilterError::TooDeep { max: MAX_DEPTH }
    );
    // Deep nesting inside a failed `not` attempt must not leak depth into the fallback.
    let leak = format!("{}not (x", "not ".repeat(10));
    assert!(matches!(error(&shape, &leak), FilterError::Syntax { .. }));
}

#[test]
fn long_and_or_chains_cost_no_stack() {
    let shape = health_shape();
    let clause = "Service.Port == 8080";
    let n = MAX_EXPR_LEN / (clause.len() + 5) - 1;
    let ands = vec![clause; n].join(" and ");
    assert!(ands.len() <= MAX_EXPR_LEN);
    assert!(eval(&shape, &web_entry(), &ands));
    let ors = format!("{} or {clause}", vec![F; n / 2].join(" or "));
    assert!(eval(&shape, &web_entry(), &ors));
}

#[test]
fn overlong_expressions_are_refused_before_parsing() {
    let expr = format!("Service.Service == \"{}\"", "x".repeat(MAX_EXPR_LEN));
    assert_eq!(
        error(&health_shape(), &expr),
        FilterError::TooLong {
            len: expr.len(),
            max: MAX_EXPR_LEN
        }
    );
}

#[test]
fn syntax_errors_say_where_and_what_was_expected() {
    error_table(
        &health_shape(),
        &[
            (
                "",
                "column 1: expected a selector, a value, \"(\" or \"not\", found the end",
            ),
            ("   ", "column 4: expected a selector"),
            (
                "Service.Service == \"web",
                "column 20: unterminated string literal",
            ),
            (
                "Service.Service == `web",
                "column 20: unterminated string literal",
            ),
            (
                "Service.Service ==",
                "column 19: expected a value after \"==\", found the end",
            ),
            (
                "Service.Service = web",
                "column 17: unexpected \"=\"; did you mean \"==\"?",
            ),
            (
                "Service.Service ! web",
                "unexpected \"!\"; did you mean \"!=\"?",
            ),
            ("Service.Service === web", "column 19: unexpected \"=\""),
            (
                "Service.Service web",
                "column 17: expected an operator (==, !=, contains",
            ),
            (
                "Service.Service is",
                "expected \"empty\" or \"not empty\" after \"is\"",
            ),
            (
                "Service.Service is not",
                "expected \"empty\" after \"is not\", found the end",
            ),
            ("Service.Service is full", "found \"full\""),
            (
                "(Service.Service == web",
                "column 24: expected \")\" to close the parenthesis",
            ),
            ("Service.Service == web)", "column 23: unmatched \")\""),
            (
                "Service.Service == web and",
                "column 27: expected a selector, a value",
            ),
            ("Service.Service == web or", "expected a selector, a value"),
            (
                "Service.Service == web Service.ID == x",
                "expected \"and\", \"or\" or the end",
            ),
            ("Service.Port == 1e3", "column 17: invalid number literal"),
            ("Service.Port == 08", "invalid number literal"),
            ("Service.Port == 1.2.3", "invalid number literal"),
            ("Service.Port == 1.", "invalid number literal"),
            ("Service.Port == -", "unexpected \"-\": expected a number"),
            ("Service. == x", "column 9: expected a field name"),
            ("Service.Meta.1 == x", "expected a field name"),
            ("Node.Meta[rack] == x", "column 11: invalid index"),
            (
                "Node.Meta[\"rack\" == x",
                "column 18: unclosed index expression",
            ),
            (
                "Node.Meta [\"rack\"] == x",
                "index like [\"key\"] must follow a selector",
            ),
            (
                "Service.Service == \"a\\qb\"",
                "column 22: invalid escape sequence",
            ),
            ("Service.Service == \"a\\x80\"", "not valid UTF-8"),
            (
                "Service.Service == \"\\uD800\"",
                "not a Unicode scalar value",
            ),
            ("Service.Service == \"\\u12\"", "invalid escape sequence"),
            ("Service.Service == \"\\'\"", "invalid escape sequence"),
            (
                "Service.Service == \"two\nlines\"",
                "newline in string literal",
            ),
            ("== web", "column 1: expected a selector, a value"),
            (
                "\"x\" in",
                "expected a selector after \"in\", found the end",
            ),
            (
                "\"x\" not in 5",
                "expected a selector after \"not in\", found number 5",
            ),
            (
                "\"x\" == Service.Service",
                "expected \"in\" or \"not in\" after a value",
            ),
            ("Service.Service == web & x", "unexpected character '&'"),
            (
                "Service.Service == web\nand ==",
                "line 2, column 5: expected a selector",
            ),
            (
                "Service.Service == \"é\" x",
                "column 24: expected \"and\", \"or\"",
            ),
            ("not", "expected a selector, a value"),
            ("()", "column 2: expected a selector"),
        ],
    );
}

#[test]
fn syntax_errors_carry_their_position() {
    let e = error(&health_shape(), "Service.Port ==\n  ==");
    assert_eq!(
        e,
        FilterError::Syntax {
            line: 2,
            column: 3,
            message: "expected a value after \"==\", found \"==\"".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "syntax error at line 2, column 3: expected a value after \"==\", found \"==\""
    );
}
