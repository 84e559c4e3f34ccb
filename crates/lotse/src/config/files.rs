//! Reading configuration files and directories (`-config-file`, `-config-dir`).
//!
//! As in Consul, both flags take a path that may be a file or a directory; a directory
//! contributes its `*.json` and `*.hcl` files (not sub-directories) in lexical order. The format
//! comes from the extension unless `-config-format` forces one; other files are skipped with a
//! warning.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Hcl,
}

impl Format {
    pub fn from_flag(s: &str) -> Result<Format, ConfigError> {
        match s {
            "json" => Ok(Format::Json),
            "hcl" => Ok(Format::Hcl),
            _ => Err(ConfigError::Invalid(format!(
                "config: -config-format must be either 'hcl' or 'json', got {s:?}"
            ))),
        }
    }

    fn from_extension(path: &Path) -> Option<Format> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Some(Format::Json),
            Some("hcl") => Some(Format::Hcl),
            _ => None,
        }
    }
}

/// Expands one `-config-file`/`-config-dir` path into the files to read, in order.
pub fn expand(
    path: &Path,
    forced: Option<Format>,
    warnings: &mut Vec<String>,
) -> Result<Vec<(PathBuf, Format)>, ConfigError> {
    let meta = std::fs::metadata(path).map_err(|e| ConfigError::Read {
        path: path.to_path_buf(),
        error: e,
    })?;
    let candidates = if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| ConfigError::Read {
                path: path.to_path_buf(),
                error: e,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file()) // follows symlinks; sub-directories are not read
            .collect();
        entries.sort();
        entries
    } else {
        vec![path.to_path_buf()]
    };
    let mut out = Vec::new();
    for p in candidates {
        match forced.or_else(|| Format::from_extension(&p)) {
            Some(f) => out.push((p, f)),
            None => warnings.push(format!(
                "config: skipping file {}, extension must be .hcl or .json, or config format must be set",
                p.display()
            )),
        }
    }
    Ok(out)
}

/// Reads and parses one file into a generic value.
pub fn read(path: &Path, format: Format) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.to_path_buf(),
        error: e,
    })?;
    parse(&text, format, &path.display().to_string())
}

/// Parses JSON or HCL text; `origin` names it in errors.
pub fn parse(text: &str, format: Format, origin: &str) -> Result<Value, ConfigError> {
    let syntax = |line, column, reason: String| ConfigError::Syntax {
        origin: origin.to_string(),
        line,
        column,
        reason,
    };
    match format {
        Format::Json => {
            // An empty file is an empty configuration (Consul skips sources without data).
            if text.trim().is_empty() {
                return Ok(Value::Object(Default::default()));
            }
            serde_json::from_str(text).map_err(|e| {
                let full = e.to_string();
                let suffix = format!(" at line {} column {}", e.line(), e.column());
                let reason = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
                syntax(e.line(), e.column(), reason)
            })
        }
        Format::Hcl => hcl::from_str::<Value>(text).map_err(|e| match e {
            hcl::Error::Parse(pe) => {
                let loc = pe.location();
                syntax(loc.line(), loc.column(), pe.message().to_string())
            }
            other => syntax(0, 0, other.to_string()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_syntax_error_has_line_and_column() {
        let err = parse(
            "{\n  \"a\": 1,\n  \"b\": \n}\n",
            Format::Json,
            "/x/bad.json",
        )
        .unwrap_err();
        let s = err.to_string();
        assert!(s.contains("/x/bad.json"), "{s}");
        assert!(s.contains("line 4"), "{s}");
        assert!(s.contains("column 1"), "{s}");
        assert!(
            !s.contains(" at line "),
            "reason repeated the location: {s}"
        );
    }

    #[test]
    fn hcl_syntax_error_has_line_and_column() {
        let err = parse("a = 1\nb = \n", Format::Hcl, "/x/bad.hcl").unwrap_err();
        let s = err.to_string();
        assert!(s.contains("/x/bad.hcl"), "{s}");
        assert!(s.contains("line 2, column 5"), "{s}");
        assert!(s.contains("invalid expression"), "{s}");
    }

    #[test]
    fn hcl_blocks_become_maps() {
        let v = parse(
            "ports {\n  http = 1\n}\nacl = { tokens = { agent = \"t\" } }\n",
            Format::Hcl,
            "x",
        )
        .unwrap();
        assert_eq!(v["ports"]["http"], 1);
        assert_eq!(v["acl"]["tokens"]["agent"], "t");
    }

    #[test]
    fn empty_json_file_is_empty_config() {
        assert_eq!(
            parse(" \n", Format::Json, "x").unwrap(),
            serde_json::json!({})
        );
    }
}
