//! Faults, one at a time, each healed before the next: partitions (halves, an isolated
//! leader, a bridge), message loss, slow links, crashes of one node, of the leader, or of all
//! of them (a whole-cluster power cut), and clock jumps (a node's wall clock, or the
//! leader's, jumps forwards or backwards by up to 30 s, then back).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::cluster::Cluster;
use super::net::Weather;

pub struct Nemesis {
    pub cluster: Arc<Cluster>,
    pub stop: Arc<AtomicBool>,
    pub log: Vec<String>,
    pub error: Option<String>,
}

impl Nemesis {
    pub async fn run(mut self, seed: u64) -> Nemesis {
        let mut rng = StdRng::seed_from_u64(seed);
        while !self.stop.load(Ordering::Relaxed) {
            tokio::time::sleep(ms(&mut rng, 300, 1500)).await;
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            if let Err(e) = self.one(&mut rng).await {
                self.error = Some(e);
                break;
            }
        }
        self
    }

    async fn one(&mut self, rng: &mut StdRng) -> Result<(), String> {
        let c = self.cluster.clone();
        let mut all = {
            let nodes = c.nodes.lock().await;
            nodes.iter().map(|n| n.id).collect::<Vec<_>>()
        };
        let hold = ms(rng, 500, 3000);
        let at = c.now_ns() / 1_000_000;
        let kind = rng.gen_range(0..110);
        let what = match kind {
            0..=14 => {
                all.shuffle(rng);
                let k = all.len() / 2;
                c.net.cut(&all[..k], &all[k..]);
                format!("partition {:?} | {:?}", &all[..k], &all[k..])
            }
            15..=29 => {
                let lead = c.current_leader().unwrap_or(all[0]);
                c.net.cut(&[lead], &all);
                format!("isolate leader {lead}")
            }
            30..=39 => {
                all.shuffle(rng);
                let k = all.len() / 2;
                let (left, rest) = all.split_at(k);
                let (bridge, right) = rest.split_at(1);
                c.net.cut(left, right);
                format!("bridge {left:?} | {bridge:?} | {right:?}")
            }
            40..=54 => {
                let loss = rng.gen_range(0.1..0.5);
                c.net.set_weather(Weather {
                    loss,
                    delay_ms: (1, 20),
                });
                format!("loss {loss:.2}")
            }
            55..=64 => {
                let hi = rng.gen_range(50..300);
                c.net.set_weather(Weather {
                    loss: 0.0,
                    delay_ms: (10, hi),
                });
                format!("slow 10-{hi} ms")
            }
            65..=79 => {
                let id = *all.choose(rng).unwrap_or(&all[0]);
                c.crash(id, rng).await;
                tokio::time::sleep(hold).await;
                c.restart(id).await?;
                self.log
                    .push(format!("{at} ms: crash {id} for {} ms", hold.as_millis()));
                return Ok(());
            }
            80..=94 => {
                let id = c.current_leader().unwrap_or(all[0]);
                c.crash(id, rng).await;
                tokio::time::sleep(hold).await;
                c.restart(id).await?;
                self.log.push(format!(
                    "{at} ms: crash leader {id} for {} ms",
                    hold.as_millis()
                ));
                return Ok(());
            }
            95..=99 => {
                for id in &all {
                    c.crash(*id, rng).await;
                }
                tokio::time::sleep(hold).await;
                c.start_down(false).await?;
                self.log
                    .push(format!("{at} ms: crash all for {} ms", hold.as_millis()));
                return Ok(());
            }
            _ => {
                let id = match c.current_leader() {
                    Some(lead) if rng.gen_bool(0.5) => lead,
                    _ => *all.choose(rng).unwrap_or(&all[0]),
                };
                let jump = rng.gen_range(200..30_000) * if rng.gen_bool(0.5) { 1 } else { -1 };
                let from = c.now_ns();
                c.set_clock_offset(id, jump);
                tokio::time::sleep(hold).await;
                c.set_clock_offset(id, 0);
                c.clock_faults
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((from, c.now_ns()));
                self.log.push(format!(
                    "{at} ms: clock of {id} {jump:+} ms for {} ms",
                    hold.as_millis()
                ));
                return Ok(());
            }
        };
        tokio::time::sleep(hold).await;
        c.net.heal();
        self.log
            .push(format!("{at} ms: {what} for {} ms", hold.as_millis()));
        Ok(())
    }
}

fn ms(rng: &mut StdRng, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(rng.gen_range(lo..hi))
}
