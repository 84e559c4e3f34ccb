//! Evaluation: every operator over Consul-shaped data, absent and mistyped values.

use super::*;

#[test]
fn equality_on_strings_numbers_and_bools() {
    table(
        &health_shape(),
        &web_entry(),
        &[
            ("Service.Service == web", true),
            ("Service.Service == Web", false), // values compare exactly
            ("Service.Service != web", false),
            ("Service.Service != db", true),
            ("Service.Kind == \"\"", true),
            ("Service.Port == 8080", true),
            ("Service.Port == 8081", false),
            ("Service.Port != 8081", true),
            // The value is converted to the field's type, Go-style: quoted, base prefixes,
            // underscores.
            ("Service.Port == \"8080\"", true),
            ("Service.Port == \"0x1F90\"", true),
            ("Service.Port == \"0o17620\"", true),
            ("Service.Port == \"017620\"", true),
            ("Service.Port == \"8_080\"", true),
            ("Service.Port == \"+8080\"", true),
            ("Service.Weights.Passing == 10", true),
            ("Node.CreateIndex == 5", true),
            ("Node.ModifyIndex == 18446744073709551615", true), // uint64 fields
            ("Service.EnableTagOverride == false", true),
            ("Service.EnableTagOverride == true", false),
            ("Service.EnableTagOverride != true", true),
            ("Service.EnableTagOverride == F", true),
            ("Service.EnableTagOverride == 0", true),
            ("Service.Connect.Native == True", true),
            ("Service.Connect.Native == 1", true),
        ],
    );
}

#[test]
fn floats_negatives_and_numeric_lists() {
    table(
        &misc_shape(),
        &misc_item(),
        &[
            ("Ratio == 0.5", true),
            ("Ratio == 0.50", true),
            ("Ratio == \"5e-1\"", true),
            ("Ratio != 0.25", true),
            ("Count == -1", true),
            ("Count == \"-0x1\"", true),
            ("On == true", true),
            ("80 in Ports", true),
            ("Ports contains 443", true),
            ("8080 in Ports", false),
            ("8080 not in Ports", true),
            ("true in Flags", true),
            ("false in Flags", false),
        ],
    );
}

#[test]
fn in_and_contains_mean_element_substring_or_key() {
    table(
        &health_shape(),
        &web_entry(),
        &[
            // List of strings: an element equals the value.
            ("primary in Service.Tags", true),
            ("Service.Tags contains v1", true),
            ("prim in Service.Tags", false),
            ("v2 not in Service.Tags", true),
            ("Service.Tags not contains primary", false),
            // String: substring.
            ("eb in Service.Service", true),
            ("Service.Service contains \"we\"", true),
            ("Service.Service not contains x", true),
            ("\"\" in Service.Service", true),
            // Map: key membership.
            ("rack in Node.Meta", true),
            ("Node.Meta contains \"zone id\"", true),
            ("r1 in Node.Meta", false), // values are not keys
            ("lan in Node.TaggedAddresses", true),
            ("lan_ipv4 in Service.TaggedAddresses", true),
            ("env not in Node.Meta", true),
        ],
    );
}

#[test]
fn emptiness_of_lists_and_maps() {
    table(
        &health_shape(),
        &web_entry(),
        &[
            ("Service.Tags is not empty", true),
            ("Service.Tags is empty", false),
            ("Service.Proxy.Upstreams is empty", true),
            ("Node.Meta is empty", false),
            ("Node.Meta is not empty", true),
            ("Checks is not empty", true),
            // Through a list: some check has no service tags.
            ("Checks.ServiceTags is empty", true),
        ],
    );
}

#[test]
fn map_keys_select_values_and_absent_keys_follow_bexpr() {
    let shape = health_shape();
    table(
        &shape,
        &web_entry(),
        &[
            ("Node.Meta.rack == r1", true),
            ("Node.Meta[\"rack\"] == r1", true),
            ("Node.Meta[\"zone id\"] == \"z-1\"", true),
            ("Service.Meta.version == \"1.2\"", true),
            ("Service.TaggedAddresses.lan_ipv4.Port == 8080", true),
            (
                "Service.TaggedAddresses.lan_ipv4.Address == \"10.0.0.1\"",
                true,
            ),
            // Absent key: nothing equals, contains or matches it; it is empty.
            ("Node.Meta.missing == x", false),
            ("Node.Meta.missing != x", true),
            ("Node.Meta.missing == \"\"", false),
            ("x in Node.Meta.missing", false),
            ("x not in Node.Meta.missing", true),
            ("Node.Meta.missing matches \".*\"", false),
            ("Node.Meta.missing not matches \".*\"", true),
            ("Service.TaggedAddresses.wan.Port == 8080", false),
            ("Service.TaggedAddresses.wan.Port != 8080", true),
        ],
    );
    table(
        &misc_shape(),
        &misc_item(),
        &[
            ("Groups.ops is not empty", true),
            ("Groups.empty is empty", true),
            ("Groups.missing is empty", true),
            ("Groups.missing is not empty", false),
            ("ann in Groups.ops", true),
        ],
    );
    // A map that is null or absent altogether has no keys.
    let bare = json!({"Node": {"Meta": null}});
    table(
        &shape,
        &bare,
        &[
            ("Node.Meta.rack == r1", false),
            ("Node.Meta.rack != r1", true),
            ("rack in Node.Meta", false),
            ("Node.Meta is empty", true),
            ("Service.Meta is empty", true),
        ],
    );
}

#[test]
fn selectors_through_lists_match_if_any_element_does() {
    let shape = health_shape();
    table(
        &shape,
        &web_entry(),
        &[
            ("Checks.Status == critical", true),
            ("Checks.Status == warning", false),
            ("Checks.Status != passing", true), // the critical check is not passing
            ("not Checks.Status == critical", false),
            (
                "Checks.CheckID == serfHealth and Checks.Status == critical",
                true,
            ),
            ("Checks.Output matches \"50[0-9] Internal\"", true),
            ("primary in Checks.ServiceTags", true),
            ("Checks.ServiceName == \"\"", true), // the node check's absent name is ""
        ],
    );
    let all_passing = json!({"Checks": [{"Status": "passing"}, {"Status": "passing"}]});
    table(
        &shape,
        &all_passing,
        &[
            ("Checks.Status != passing", false),
            ("not Checks.Status != passing", true),
        ],
    );
    // No elements: every operator is false, negated ones included.
    for checks in [json!([]), json!(null)] {
        let item = json!({ "Checks": checks });
        table(
            &shape,
            &item,
            &[
                ("Checks.Status == passing", false),
                ("Checks.Status != passing", false),
                ("x not in Checks.ServiceTags", false),
                ("Checks is empty", true),
            ],
        );
    }
    // Lists of lists are flattened.
    table(
        &misc_shape(),
        &misc_item(),
        &[("Nested.X == b", true), ("Nested.X == c", false)],
    );
}

#[test]
fn matches_uses_regular_expressions() {
    table(
        &health_shape(),
        &web_entry(),
        &[
            ("Service.Service matches \"^w.b$\"", true),
            ("Service.ID matches `^web-[0-9]+$`", true),
            ("Service.ID matches \"^db\"", false),
            ("Service.ID not matches \"^db\"", true),
            ("Service.Service matches \"(?i)^WEB$\"", true),
            ("Service.Kind matches \"^$\"", true),
            ("Node.Meta.rack matches \"r[0-9]\"", true),
            ("Service.ID matches eb", true), // unanchored, like Go's regexp.Match
        ],
    );
}

#[test]
fn absent_null_or_mistyped_fields_read_as_zero_values() {
    let shape = health_shape();
    let sparse = json!({"Service": {"Port": null, "Tags": null}});
    let mistyped = json!({"Service": {"Port": "8080", "Service": 7, "Tags": "primary",
                                       "EnableTagOverride": "yes"}, "Node": []});
    for item in [
        sparse,
        mistyped,
        json!({}),
        json!(null),
        json!("text"),
        json!([1, 2]),
    ] {
        table(
            &shape,
            &item,
            &[
                ("Service.Port == 0", true),
                ("Service.Service == \"\"", true),
                ("Service.Tags is empty", true),
                ("primary in Service.Tags", false),
                ("Service.EnableTagOverride == false", true),
                ("Node.Node == \"\"", true),
                ("Checks.Status != passing", false),
            ],
        );
    }
    // A fractional number in an integer field compares numerically.
    let odd = json!({"Service": {"Port": 8080.0}});
    assert!(eval(&shape, &odd, "Service.Port == 8080"));
}
