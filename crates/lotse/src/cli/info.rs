//! `lotse info`: the agent's `Stats` from `GET /v1/agent/self`, in consul's layout.

use super::flags::{self, HttpOnlyArgs};

pub fn help() -> String {
    flags::usage::<HttpOnlyArgs>(
        "Usage: lotse info [options]\n\n  Provides debugging information for operators",
    )
}

/// `section:` lines, each followed by its `\tkey = value` lines, both sorted by name.
pub fn format_stats(stats: &serde_json::Map<String, serde_json::Value>) -> Result<String, String> {
    let mut out = String::new();
    let mut sections: Vec<&String> = stats.keys().collect();
    sections.sort();
    for section in sections {
        out.push_str(section);
        out.push_str(":\n");
        let Some(sub) = stats[section].as_object() else {
            return Err(format!("Got invalid subkey in stats: {}", stats[section]));
        };
        let mut keys: Vec<&String> = sub.keys().collect();
        keys.sort();
        for k in keys {
            let v = match &sub[k] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push_str(&format!("\t{k} = {v}\n"));
        }
    }
    Ok(out)
}

pub fn run(args: &[String]) -> i32 {
    let client = match flags::http_only_client(args) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let me = match client.agent_self() {
        Ok(v) => v,
        Err(e) => return flags::fail("Error querying agent", e),
    };
    let Some(stats) = me.get("Stats").and_then(|s| s.as_object()) else {
        eprintln!("Agent response did not contain 'Stats' key: {me}");
        return 1;
    };
    match format_stats(stats) {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_and_keys_sorted() {
        let v = serde_json::json!({
            "raft": {"term": "2", "applied_index": "10"},
            "agent": {"check_monitors": "0", "services": 1}
        });
        assert_eq!(
            format_stats(v.as_object().unwrap()).unwrap(),
            "agent:\n\tcheck_monitors = 0\n\tservices = 1\nraft:\n\tapplied_index = 10\n\tterm = 2\n"
        );
    }

    #[test]
    fn non_object_section_is_an_error() {
        let v = serde_json::json!({"agent": "x"});
        assert!(format_stats(v.as_object().unwrap()).is_err());
    }
}
