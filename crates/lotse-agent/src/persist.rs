//! What the HTTP API registered survives a restart: each service and check registered through
//! the API is written to `<data_dir>/agent/{services,checks}/` (as Consul persists them), and
//! read back at start before anti-entropy's first full sync, which would otherwise remove them
//! from the catalog. Config-file definitions are not persisted: the files are their record.
//!
//! Files are written to a temporary name, fsynced and renamed, so a crash leaves the old file
//! or the new one. A file that cannot be read back is logged and skipped, never fatal.

use std::io::Write;
use std::path::{Path, PathBuf};

use lotse_core::catalog::HealthCheck;
use serde::{Deserialize, Serialize};

use crate::definition::{CheckDefinition, ServiceDefinition};

/// Bumped when the file layout changes incompatibly; other versions are skipped with a warning.
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct ServiceFile {
    format: u32,
    definition: ServiceDefinition,
}

/// A check registered on its own: its catalog row (maintenance checks have nothing else) and
/// what to run.
#[derive(Serialize, Deserialize)]
pub(crate) struct CheckFile {
    format: u32,
    pub(crate) row: HealthCheck,
    pub(crate) definition: Option<CheckDefinition>,
}

pub(crate) struct Persist {
    services: PathBuf,
    checks: PathBuf,
}

/// IDs may hold `/` and other characters a file name cannot: the name is the ID in hex.
fn file_name(id: &str) -> String {
    let hex: String = id.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.json")
}

fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a persisted registration");
        }
    }
}

/// Every `.json` file of `dir` decoded as `T`; the rest is logged and skipped.
fn load_dir<T: for<'de> Deserialize<'de>>(dir: &Path) -> Vec<T> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<T>(&b).map_err(|e| e.to_string()))
        {
            Ok(v) => out.push(v),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "skipping an unreadable persisted registration")
            }
        }
    }
    out
}

impl Persist {
    pub(crate) fn open(data_dir: &Path) -> std::io::Result<Persist> {
        let base = data_dir.join("agent");
        let p = Persist {
            services: base.join("services"),
            checks: base.join("checks"),
        };
        std::fs::create_dir_all(&p.services)?;
        std::fs::create_dir_all(&p.checks)?;
        Ok(p)
    }

    pub(crate) fn save_service(&self, def: &ServiceDefinition) -> std::io::Result<()> {
        let file = ServiceFile {
            format: FORMAT,
            definition: def.clone(),
        };
        let bytes = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
        write_durably(&self.services.join(file_name(&def.service.id)), &bytes)
    }

    pub(crate) fn save_check(
        &self,
        row: &HealthCheck,
        definition: Option<&CheckDefinition>,
    ) -> std::io::Result<()> {
        let file = CheckFile {
            format: FORMAT,
            row: row.clone(),
            definition: definition.cloned(),
        };
        let bytes = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
        write_durably(&self.checks.join(file_name(&row.check_id)), &bytes)
    }

    pub(crate) fn remove_service(&self, id: &str) {
        remove(&self.services.join(file_name(id)));
    }

    pub(crate) fn remove_check(&self, id: &str) {
        remove(&self.checks.join(file_name(id)));
    }

    pub(crate) fn load_services(&self) -> Vec<ServiceDefinition> {
        load_dir::<ServiceFile>(&self.services)
            .into_iter()
            .filter(|f| f.format == FORMAT)
            .map(|f| f.definition)
            .collect()
    }

    pub(crate) fn load_checks(&self) -> Vec<CheckFile> {
        load_dir::<CheckFile>(&self.checks)
            .into_iter()
            .filter(|f| f.format == FORMAT)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotse_core::catalog::{CheckStatus, Service};

    #[test]
    fn registrations_round_trip_and_removals_stick() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Persist::open(dir.path()).expect("opens");
        let def = ServiceDefinition {
            service: Service {
                id: "web/1".into(),
                name: "web".into(),
                port: 80,
                ..Default::default()
            },
            checks: Vec::new(),
            sidecar: None,
            token: String::new(),
        };
        p.save_service(&def).expect("saves");
        let mut row = HealthCheck::new("n1", "_node_maintenance", "Node Maintenance Mode");
        row.status = CheckStatus::Critical;
        p.save_check(&row, None).expect("saves");
        std::fs::write(p.services.join("junk.json"), b"{not json").expect("writes");

        let again = Persist::open(dir.path()).expect("reopens");
        assert_eq!(again.load_services(), vec![def]);
        let checks = again.load_checks();
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].row, row);

        again.remove_service("web/1");
        again.remove_check("_node_maintenance");
        again.remove_check("never-there");
        assert!(again.load_services().is_empty() && again.load_checks().is_empty());
    }
}
