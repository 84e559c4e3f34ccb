//! Checking against the shape: selectors, operators, values and regular expressions that do
//! not fit the data are rejected when the filter is parsed, with Consul's wording.

use super::*;
use crate::filter::MAX_REGEXES;

#[test]
fn selectors_that_name_no_field_are_rejected() {
    let shape = health_shape();
    let e = error(&shape, "Service.Foo == x");
    assert_eq!(
        e,
        FilterError::InvalidSelector {
            selector: "Service.Foo".into(),
            hint: e_hint(&e),
        }
    );
    assert!(e
        .to_string()
        .starts_with("Selector \"Service.Foo\" is not valid: "));
    error_table(
        &shape,
        &[
            (
                "Service.Foo == x",
                "\"Service\" has no field \"Foo\"; its fields are Address,",
            ),
            (
                "Foo == x",
                "Selector \"Foo\" is not valid: the item has no field \"Foo\"",
            ),
            (
                "service.Port == 1",
                "did you mean \"Service\"? (field names are case-sensitive)",
            ),
            (
                "Service.port == 1",
                "Selector \"Service.port\" is not valid",
            ),
            (
                "Service.Port.X == 1",
                "\"Service.Port\" is an integer and has no fields",
            ),
            (
                "Service.Tags.x == 1",
                "\"Service.Tags\" is a list of strings and has no fields",
            ),
            (
                "Node.Meta.a.b == 1",
                "\"Node.Meta.a\" is a string and has no fields",
            ),
            (
                "Checks.Definition.X == 1",
                "\"Checks.Definition\" is not filterable",
            ),
            (
                "x in Service.Bogus",
                "Selector \"Service.Bogus\" is not valid",
            ),
        ],
    );
}

fn e_hint(e: &FilterError) -> String {
    match e {
        FilterError::InvalidSelector { hint, .. } => hint.clone(),
        other => panic!("not a selector error: {other:?}"),
    }
}

#[test]
fn operators_must_suit_the_field_type() {
    error_table(
        &health_shape(),
        &[
            (
                "Service.Port contains 1",
                "Invalid match operator \"contains\" for selector \"Service.Port\": \
                 it is an integer, which supports ==, !=",
            ),
            (
                "Service.Port matches \"8\"",
                "Invalid match operator \"matches\"",
            ),
            (
                "Service.Port is empty",
                "Invalid match operator \"is empty\"",
            ),
            (
                "Service.EnableTagOverride is not empty",
                "it is a boolean, which supports ==, !=",
            ),
            (
                "Service.Service is empty",
                "it is a string, which supports ==, !=, in/contains",
            ),
            ("Service == x", "it is an object; select one of its fields"),
            (
                "Service.Tags == primary",
                "it is a list of strings, which supports in/contains",
            ),
            (
                "Service.Tags matches x",
                "Invalid match operator \"matches\"",
            ),
            (
                "Checks == x",
                "it is a list of objects, which supports is empty, is not empty",
            ),
            (
                "x in Checks",
                "Invalid match operator \"in\" for selector \"Checks\"",
            ),
            (
                "Node.Meta == x",
                "it is a map of strings, which supports is empty",
            ),
            ("Node.Meta matches x", "Invalid match operator \"matches\""),
            ("Checks.Definition == x", "it is not filterable"),
        ],
    );
}

#[test]
fn values_must_convert_to_the_field_type() {
    error_table(
        &health_shape(),
        &[
            (
                "Service.Port == abc",
                "Failed to coerce value \"abc\" for selector \"Service.Port\": not an integer",
            ),
            ("Service.Port == 80.5", "not an integer"),
            ("Service.Port == \"0x\"", "not an integer"),
            ("Service.Port == \"08\"", "not an integer"),
            ("Service.Port == \"1__0\"", "not an integer"),
            ("Service.Port == \"_10\"", "not an integer"),
            ("Service.Port == 99999999999999999999", "not an integer"),
            ("Service.EnableTagOverride == yes", "not a boolean"),
            ("Service.EnableTagOverride == TRUE1", "not a boolean"),
        ],
    );
    error_table(
        &misc_shape(),
        &[
            ("Ratio == abc", "not a number"),
            (
                "x in Ports",
                "Failed to coerce value \"x\" for selector \"Ports\": not an integer",
            ),
        ],
    );
}

#[test]
fn regular_expressions_are_compiled_at_parse_time() {
    let shape = health_shape();
    error_table(
        &shape,
        &[
            (
                "Service.ID matches \"(\"",
                "Failed to compile regular expression \"(\": unclosed group",
            ),
            (
                "Service.ID not matches \"[z-a]\"",
                "Failed to compile regular expression",
            ),
            (
                "Service.ID matches \"\\\\w{1000}\"",
                "Failed to compile regular expression",
            ),
        ],
    );
    let one = "Service.ID matches x";
    let many = vec![one; MAX_REGEXES].join(" or ");
    assert!(Filter::parse(&many, &shape).is_ok());
    let too_many = format!("{many} or {one}");
    assert_eq!(
        error(&shape, &too_many),
        FilterError::TooManyRegexes { max: MAX_REGEXES }
    );
}
