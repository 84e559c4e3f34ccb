//! The gossip keyring at start: `<data_dir>/serf/local.keyring` if it exists (as Consul, it
//! wins over `encrypt`, which only seeds a new keyring), else a ring of the `encrypt` key,
//! written there so that rotations made later survive restarts.

use std::path::PathBuf;

use lotse_gossip::Keyring;

use crate::config::AgentConfig;

/// Where the keyring is kept (`None` in `-dev` or without a data dir).
pub fn path(cfg: &AgentConfig) -> Option<PathBuf> {
    if cfg.dev {
        return None;
    }
    cfg.data_dir
        .as_ref()
        .map(|d| d.join("serf").join("local.keyring"))
}

pub fn load(cfg: &AgentConfig) -> Result<Option<Keyring>, String> {
    let file = path(cfg);
    if let Some(f) = file.as_ref().filter(|f| f.exists()) {
        let ring =
            Keyring::load(f).map_err(|e| format!("cannot read keyring {}: {e}", f.display()))?;
        if cfg.encrypt.is_some() {
            tracing::warn!(keyring = %f.display(), "loaded the keyring file; the encrypt key is ignored");
        }
        return Ok(Some(ring));
    }
    let Some(key) = &cfg.encrypt else {
        return Ok(None);
    };
    let ring = Keyring::new(key.clone()).map_err(|e| format!("invalid encrypt key: {e}"))?;
    if let Some(f) = &file {
        if let Some(dir) = f.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        ring.save(f)
            .map_err(|e| format!("cannot write keyring {}: {e}", f.display()))?;
    }
    Ok(Some(ring))
}
