//! Configuration: who we are, where we listen, and the protocol timing.
//!
//! `Timing` defaults to memberlist's `DefaultLANConfig` (what Consul uses for serf_lan) so that
//! failure-detection times match what Consul operators expect. `Timing::foca_config` is the one
//! place where these numbers become a foca `Config`; the live driver and the simulation both use
//! it, so the simulation measures the configuration we ship.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    num::{NonZeroU8, NonZeroUsize},
    time::Duration,
};

use crate::keyring::Keyring;

/// Largest foca payload we produce or accept. A UDP datagram also carries the envelope
/// (1 version byte, 12 nonce bytes, 16 tag bytes), and we stay under a 1400-byte MTU budget.
pub const MAX_FOCA_PACKET: usize = 1350;

/// Everything `Gossip::start` needs.
#[derive(Clone, Debug)]
pub struct GossipConfig {
    /// Our node name; unique in the pool.
    pub node_name: String,
    /// Local address for both the UDP and the TCP socket (Consul's serf_lan port 8301).
    pub bind: SocketAddr,
    /// The address other members use to reach us. Port 0 in `bind` is resolved, and if
    /// `advertise` has port 0 the bound port is used.
    pub advertise: SocketAddr,
    /// Our tags: role (`consul` for servers, `node` for clients), dc, port, build, vsn, ...
    pub tags: BTreeMap<String, String>,
    /// `None`: plaintext. `Some`: every packet and stream is AES-GCM sealed with the primary key.
    pub keyring: Option<Keyring>,
    /// Protocol timing.
    pub timing: Timing,
}

/// Protocol timing, with memberlist's LAN defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    /// How often a random member is probed (memberlist `ProbeInterval`, 1 s).
    pub probe_interval: Duration,
    /// How long to wait for a direct ack before indirect probes (`ProbeTimeout`, 500 ms).
    pub probe_timeout: Duration,
    /// Suspicion lasts `suspicion_mult * max(1, log10(n)) * probe_interval` (`SuspicionMult`, 4).
    pub suspicion_mult: u32,
    /// How often we gossip queued updates (`GossipInterval`, 200 ms).
    pub gossip_interval: Duration,
    /// To how many random members each gossip round goes (`GossipNodes`, 3).
    pub gossip_nodes: usize,
    /// How often we do a full TCP state exchange with one random member (`PushPullInterval`, 30 s).
    pub push_pull_interval: Duration,
    /// How long failed and left members stay listed before a `Reap` (Consul's
    /// `reconnect_timeout`, 72 h).
    pub reap_after: Duration,
    /// Each update is retransmitted `retransmit_mult * ceil(log10(n + 1))` times (`RetransmitMult`, 4).
    pub retransmit_mult: u32,
    /// Connect/read/write timeout of one TCP push/pull (`TCPTimeout`, 10 s).
    pub tcp_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            suspicion_mult: 4,
            gossip_interval: Duration::from_millis(200),
            gossip_nodes: 3,
            push_pull_interval: Duration::from_secs(30),
            reap_after: Duration::from_secs(72 * 3600),
            retransmit_mult: 4,
            tcp_timeout: Duration::from_secs(10),
        }
    }
}

impl Timing {
    /// The defaults with every duration multiplied by `factor` (e.g. 0.1 for tests); counts and
    /// multipliers stay. Durations never drop below 1 ms.
    pub fn scaled(factor: f32) -> Self {
        let d = Self::default();
        let f = if factor.is_finite() && factor > 0.0 {
            f64::from(factor)
        } else {
            1.0
        };
        // Rounded to whole microseconds so that f32 noise (0.1 is 0.100000001) disappears.
        let s = |x: Duration| {
            Duration::from_micros(((x.as_micros() as f64) * f).round().max(1000.0) as u64)
        };
        Self {
            probe_interval: s(d.probe_interval),
            probe_timeout: s(d.probe_timeout),
            gossip_interval: s(d.gossip_interval),
            push_pull_interval: s(d.push_pull_interval),
            reap_after: s(d.reap_after),
            tcp_timeout: s(d.tcp_timeout).max(Duration::from_millis(500)),
            ..d
        }
    }

    /// How long a suspect member has to refute before it is declared down, for `n` members.
    pub fn suspicion_timeout(&self, n: usize) -> Duration {
        let scale = (n.max(1) as f64).log10().max(1.0);
        Duration::from_secs_f64(
            f64::from(self.suspicion_mult.max(1)) * scale * self.probe_interval.as_secs_f64(),
        )
    }

    /// How many times each update is piggybacked, for `n` members.
    pub fn retransmits(&self, n: usize) -> NonZeroU8 {
        let t = f64::from(self.retransmit_mult.max(1)) * ((n as f64) + 1.0).log10().ceil();
        NonZeroU8::new(t.clamp(1.0, 255.0) as u8).unwrap_or(NonZeroU8::MIN)
    }

    /// The foca configuration for a pool of about `n` members.
    pub fn foca_config(&self, n: usize) -> foca::Config {
        let mut c = foca::Config::simple();
        c.probe_period = self.probe_interval.max(Duration::from_millis(2));
        // foca wants probe_rtt < probe_period.
        c.probe_rtt = self
            .probe_timeout
            .min(c.probe_period / 2)
            .max(Duration::from_millis(1));
        c.num_indirect_probes = NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN);
        c.max_transmissions = self.retransmits(n);
        c.suspect_to_down_after = self.suspicion_timeout(n);
        // foca forgets Down identities after this; our own member table keeps failed members
        // for `reap_after`, so foca only needs to outlive stale gossip about the old identity.
        c.remove_down_after = Some(self.reap_after.max(Duration::from_secs(60)));
        c.max_packet_size = NonZeroUsize::new(MAX_FOCA_PACKET).unwrap_or(NonZeroUsize::MIN);
        // Off on purpose. In foca 2.0.0 the suspect->down timer sends `TurnUndead` even when
        // the member refuted the suspicion in time, so under packet loss live members get told
        // they are down and rejoin under a new generation (the simulation showed 37 of 200
        // members flapping at 10% loss). A member that really was declared down learns it from
        // the next TCP push/pull instead, which also targets failed members.
        c.notify_down_members = false;
        c.periodic_announce = Some(foca::PeriodicParams {
            frequency: self.push_pull_interval,
            num_members: NonZeroUsize::MIN,
        });
        c.periodic_announce_to_down_members = Some(foca::PeriodicParams {
            frequency: self.push_pull_interval * 2,
            num_members: NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN),
        });
        c.periodic_gossip = Some(foca::PeriodicParams {
            frequency: self.gossip_interval,
            num_members: NonZeroUsize::new(self.gossip_nodes.max(1)).unwrap_or(NonZeroUsize::MIN),
        });
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_defaults_match_memberlist() {
        let t = Timing::default();
        assert_eq!(t.suspicion_timeout(1), Duration::from_secs(4));
        assert_eq!(t.suspicion_timeout(1000), Duration::from_secs(12));
        assert_eq!(t.retransmits(3).get(), 4);
        assert_eq!(t.retransmits(200).get(), 12);
        let c = t.foca_config(10);
        assert_eq!(c.probe_period, Duration::from_secs(1));
        assert_eq!(c.probe_rtt, Duration::from_millis(500));
    }

    #[test]
    fn scaled_keeps_ratios() {
        let t = Timing::scaled(0.1);
        assert_eq!(t.probe_interval, Duration::from_millis(100));
        assert_eq!(t.gossip_interval, Duration::from_millis(20));
        assert_eq!(t.suspicion_mult, 4);
    }
}
