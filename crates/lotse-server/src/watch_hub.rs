//! Where parked blocking queries wait, keyed by exactly what they read.
//!
//! A parked query costs one `Notify` and one map entry per key it watches, and no CPU until
//! something it depends on changes. Applying a command wakes only the waiters on the keys it
//! touched, on the prefixes of those keys, and on the tables it moved. Wakers are one-shot: a
//! woken query runs again and registers anew if it still has to wait.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use lotse_core::{Changes, Table, WatchKey};
use tokio::sync::Notify;

type Waiters = Vec<(u64, Arc<Notify>)>;

#[derive(Default)]
struct Inner {
    next_id: u64,
    keys: HashMap<String, Waiters>,
    prefixes: HashMap<String, Waiters>,
    /// How many registered prefixes have each length: a changed key is checked only against
    /// prefix lengths that are in use.
    prefix_lens: BTreeMap<usize, usize>,
    tables: HashMap<Table, Waiters>,
    services: HashMap<String, Waiters>,
    nodes: HashMap<String, Waiters>,
    parked: usize,
}

/// Something that keeps its own derived view of the store (the DNS interface's catalog view)
/// and must hear of every change, not only of those a parked query waits for.
pub trait ChangeListener: Send + Sync {
    /// Called after each batch of applied commands, with what they touched.
    fn changed(&self, changes: &[Changes]);
    /// The store was replaced wholesale (a snapshot was installed).
    fn reset(&self);
}

#[derive(Default)]
pub struct WatchHub {
    inner: Mutex<Inner>,
    listeners: std::sync::RwLock<Vec<Arc<dyn ChangeListener>>>,
}

/// A registration; dropping it forgets the waiter.
pub struct Watch<'a> {
    hub: &'a WatchHub,
    id: u64,
    keys: Vec<WatchKey>,
    notify: Arc<Notify>,
}

impl Watch<'_> {
    /// Resolves once anything watched changed (immediately if it already did).
    pub async fn changed(&self) {
        self.notify.notified().await
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        let mut inner = self.hub.lock();
        inner.parked -= 1;
        for key in &self.keys {
            inner.remove(key, self.id);
        }
    }
}

impl Inner {
    fn list(&mut self, key: &WatchKey) -> &mut Waiters {
        match key {
            WatchKey::Key(k) => self.keys.entry(k.clone()).or_default(),
            WatchKey::Prefix(p) => {
                if !self.prefixes.contains_key(p) {
                    *self.prefix_lens.entry(p.len()).or_default() += 1;
                }
                self.prefixes.entry(p.clone()).or_default()
            }
            WatchKey::Table(t) => self.tables.entry(*t).or_default(),
            WatchKey::Service(s) => self.services.entry(s.clone()).or_default(),
            WatchKey::Node(n) => self.nodes.entry(n.clone()).or_default(),
        }
    }

    fn remove(&mut self, key: &WatchKey, id: u64) {
        let (emptied, prefix) = match key {
            WatchKey::Key(k) => (remove_from(&mut self.keys, k, id), None),
            WatchKey::Prefix(p) => (remove_from(&mut self.prefixes, p, id), Some(p.len())),
            WatchKey::Table(t) => (remove_from(&mut self.tables, t, id), None),
            WatchKey::Service(s) => (remove_from(&mut self.services, s, id), None),
            WatchKey::Node(n) => (remove_from(&mut self.nodes, n, id), None),
        };
        if let (true, Some(len)) = (emptied, prefix) {
            self.forget_prefix_len(len);
        }
    }

    fn forget_prefix_len(&mut self, len: usize) {
        if let Some(n) = self.prefix_lens.get_mut(&len) {
            *n -= 1;
            if *n == 0 {
                self.prefix_lens.remove(&len);
            }
        }
    }

    fn wake_key(&mut self, key: &str) {
        wake(self.keys.remove(key));
        let lens: Vec<usize> = self
            .prefix_lens
            .range(..=key.len())
            .map(|(l, _)| *l)
            .collect();
        for len in lens {
            if !key.is_char_boundary(len) {
                continue;
            }
            if let Some(w) = self.prefixes.remove(&key[..len]) {
                self.forget_prefix_len(len);
                wake(Some(w));
            }
        }
    }
}

/// Removes waiter `id` under `k`; true if that emptied and dropped the entry.
fn remove_from<
    K: std::hash::Hash + Eq + ?Sized,
    Q: std::hash::Hash + Eq + std::borrow::Borrow<K>,
>(
    map: &mut HashMap<Q, Waiters>,
    k: &K,
    id: u64,
) -> bool {
    let Some(list) = map.get_mut(k) else {
        return false;
    };
    list.retain(|(i, _)| *i != id);
    if list.is_empty() {
        map.remove(k);
        return true;
    }
    false
}

fn wake(waiters: Option<Waiters>) {
    for (_, n) in waiters.into_iter().flatten() {
        n.notify_one();
    }
}

impl WatchHub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a waiter on every key. Register *before* reading the state, so a change that
    /// lands after the read cannot be missed.
    pub fn watch(&self, keys: &[WatchKey]) -> Watch<'_> {
        let notify = Arc::new(Notify::new());
        let mut inner = self.lock();
        inner.next_id += 1;
        inner.parked += 1;
        let id = inner.next_id;
        for key in keys {
            inner.list(key).push((id, notify.clone()));
        }
        Watch {
            hub: self,
            id,
            keys: keys.to_vec(),
            notify,
        }
    }

    /// Adds a listener that hears of every change from now on.
    pub fn listen(&self, listener: Arc<dyn ChangeListener>) {
        self.listeners
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(listener);
    }

    fn listeners(&self) -> Vec<Arc<dyn ChangeListener>> {
        self.listeners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Wakes every waiter that depends on what `changes` touched (listeners first, so a
    /// woken query never reads a derived view that still shows the old state).
    pub fn notify(&self, changes: &[Changes]) {
        for l in self.listeners() {
            l.changed(changes);
        }
        let mut inner = self.lock();
        for c in changes {
            for key in &c.keys {
                inner.wake_key(key);
            }
            for t in &c.tables {
                wake(inner.tables.remove(t));
            }
            for s in &c.services {
                wake(inner.services.remove(s));
            }
            for n in &c.nodes {
                wake(inner.nodes.remove(n));
            }
        }
    }

    /// Wakes everyone (the store was replaced wholesale).
    pub fn notify_all(&self) {
        for l in self.listeners() {
            l.reset();
        }
        let mut inner = self.lock();
        let keys: Vec<Waiters> = inner.keys.drain().map(|(_, w)| w).collect();
        let prefixes: Vec<Waiters> = inner.prefixes.drain().map(|(_, w)| w).collect();
        let tables: Vec<Waiters> = inner.tables.drain().map(|(_, w)| w).collect();
        let services: Vec<Waiters> = inner.services.drain().map(|(_, w)| w).collect();
        let nodes: Vec<Waiters> = inner.nodes.drain().map(|(_, w)| w).collect();
        inner.prefix_lens.clear();
        for w in keys
            .into_iter()
            .chain(prefixes)
            .chain(tables)
            .chain(services)
            .chain(nodes)
        {
            wake(Some(w));
        }
    }

    /// How many queries are parked right now.
    pub fn parked(&self) -> usize {
        self.lock().parked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn changed(keys: &[&str]) -> Vec<Changes> {
        vec![Changes {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            tables: vec![Table::Kv],
            ..Default::default()
        }]
    }

    async fn woken(w: &Watch<'_>) -> bool {
        tokio::time::timeout(Duration::from_millis(20), w.changed())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_key_watch_wakes_only_for_its_key() {
        let hub = WatchHub::default();
        let w = hub.watch(&[WatchKey::Key("a".into())]);
        hub.notify(&changed(&["b", "ab"]));
        assert!(!woken(&w).await);
        hub.notify(&changed(&["a"]));
        assert!(woken(&w).await);
    }

    #[tokio::test]
    async fn a_prefix_watch_wakes_for_keys_under_it() {
        let hub = WatchHub::default();
        let w = hub.watch(&[WatchKey::Prefix("web/".into())]);
        hub.notify(&changed(&["web", "api/x"]));
        assert!(!woken(&w).await);
        hub.notify(&changed(&["web/config/port"]));
        assert!(woken(&w).await);
    }

    #[tokio::test]
    async fn dropped_watches_leave_nothing_behind() {
        let hub = WatchHub::default();
        {
            let _a = hub.watch(&[WatchKey::Prefix("p/".into()), WatchKey::Key("k".into())]);
            let _b = hub.watch(&[WatchKey::Table(Table::Sessions)]);
            let _c = hub.watch(&[WatchKey::Service("web".into()), WatchKey::Node("n1".into())]);
            assert_eq!(hub.parked(), 3);
        }
        assert_eq!(hub.parked(), 0);
        let inner = hub.lock();
        assert!(inner.keys.is_empty() && inner.prefixes.is_empty() && inner.tables.is_empty());
        assert!(inner.services.is_empty() && inner.nodes.is_empty());
        assert!(inner.prefix_lens.is_empty());
    }

    #[tokio::test]
    async fn a_service_watch_wakes_only_for_its_service() {
        let hub = WatchHub::default();
        let w = hub.watch(&[WatchKey::Service("web".into())]);
        let touched = |services: &[&str]| Changes {
            tables: vec![Table::Services],
            services: services.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        hub.notify(&[touched(&["api", "webby"])]);
        assert!(!woken(&w).await);
        hub.notify(&[touched(&["web"])]);
        assert!(woken(&w).await);
    }

    #[tokio::test]
    async fn a_change_before_waiting_is_not_lost() {
        let hub = WatchHub::default();
        let w = hub.watch(&[WatchKey::Table(Table::Sessions)]);
        hub.notify(&[Changes {
            keys: vec![],
            tables: vec![Table::Sessions],
            ..Default::default()
        }]);
        assert!(woken(&w).await);
    }
}
