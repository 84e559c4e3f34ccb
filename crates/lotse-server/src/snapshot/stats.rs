//! What `lotse snapshot inspect` counts in a store image, as Consul's inspect does: records and
//! their encoded bytes per type, and per key prefix for `-kvdetails`.

use std::collections::BTreeMap;

use lotse_core::Store;
use serde::Serialize;

/// One row of the table: a type (or key prefix), how many records, how many encoded bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TypeStat {
    pub name: String,
    pub sum: u64,
    pub count: u64,
}

fn size<T: Serialize + ?Sized>(v: &T) -> u64 {
    postcard::to_stdvec(v).map_or(0, |b| b.len() as u64)
}

/// Largest first, then by name, as Consul sorts its rows.
fn sorted(map: BTreeMap<String, (u64, u64)>) -> Vec<TypeStat> {
    let mut rows: Vec<TypeStat> = map
        .into_iter()
        .filter(|(_, (count, _))| *count > 0)
        .map(|(name, (count, sum))| TypeStat { name, sum, count })
        .collect();
    rows.sort_by(|a, b| b.sum.cmp(&a.sum).then_with(|| a.name.cmp(&b.name)));
    rows
}

/// Records per type: `KVS` (keys), `Register` (one per node, with its services and checks, as
/// Consul's catalog registrations), `Session`.
pub fn by_type(store: &Store) -> Vec<TypeStat> {
    let mut map: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut add = |name: &str, bytes: u64| {
        let e = map.entry(name.to_string()).or_default();
        e.0 += 1;
        e.1 += bytes;
    };
    for e in store.kv_list("").1 {
        add("KVS", size(e));
    }
    for n in store.catalog_nodes(&[]).1 {
        let services = store
            .catalog_node(&n.name)
            .1
            .map_or(0, |(_, svcs)| svcs.iter().map(|s| size(*s)).sum());
        let checks: u64 = store.node_health(&n.name).1.iter().map(|c| size(*c)).sum();
        add("Register", size(n) + services + checks);
    }
    for s in store.session_list().1 {
        add("Session", size(s));
    }
    sorted(map)
}

/// Keys under `filter`, grouped by their first `depth` `/`-separated segments (Consul's
/// `-kvdepth`, `-kvfilter`).
pub fn by_key_prefix(store: &Store, depth: usize, filter: &str) -> Vec<TypeStat> {
    let mut map: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for e in store.kv_list(filter).1 {
        let group: Vec<&str> = e.key.split('/').take(depth.max(1)).collect();
        let entry = map.entry(group.join("/")).or_default();
        entry.0 += 1;
        entry.1 += size(e);
    }
    sorted(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotse_core::kv::KvWrite;
    use lotse_core::Command;

    #[test]
    fn keys_are_counted_per_type_and_per_prefix() {
        let mut store = Store::new();
        for (i, k) in ["vault/core/a", "vault/core/b", "vault/sys/x", "top"]
            .iter()
            .enumerate()
        {
            store.apply(
                i as u64 + 1,
                &Command::KvSet(KvWrite {
                    key: k.to_string(),
                    value: vec![1; 10],
                    flags: 0,
                }),
            );
        }
        let types = by_type(&store);
        assert_eq!(types.len(), 1);
        assert_eq!((types[0].name.as_str(), types[0].count), ("KVS", 4));
        let kv = by_key_prefix(&store, 2, "");
        let names: Vec<(&str, u64)> = kv.iter().map(|s| (s.name.as_str(), s.count)).collect();
        // Largest first: "vault/sys/x" outweighs "top".
        assert_eq!(names, [("vault/core", 2), ("vault/sys", 1), ("top", 1)]);
        let kv = by_key_prefix(&store, 1, "vault");
        assert_eq!(kv.len(), 1);
        assert_eq!((kv[0].name.as_str(), kv[0].count), ("vault", 3));
    }
}
