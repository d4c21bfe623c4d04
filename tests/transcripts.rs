//! Scripted transcripts in the style of etcd-io/raft's `testdata/*.txt`: a reviewer reads each file
//! top to bottom as a story. Every command prints what the engines did (a `demoted` event with its
//! `reason=`); `REWRITE=1 cargo test --test transcripts` regenerates the expected output after a
//! deliberate change.
//!
//! Commands:
//!   cluster ids=(a,b,c) [pre_vote=false] [check_quorum=false]   a fresh group, all booted at t=0
//!   fire a             jump the clock to a's next deadline and tick a alone (others wait)
//!   advance secs=0.1 [quiet]   let time pass with a working network: timers fire in deadline order
//!                      and every message is delivered at once; `quiet` prints only persists and
//!                      events
//!   campaign a | resign a | transfer from=a to=b
//!   deliver [from=a] [to=b]   deliver the queued messages (that match) once; replies are queued
//!   stabilize          deliver until nothing is in flight
//!   cut a b | isolate a | heal     drop traffic on links (checked when delivered)
//!   crash a | restart a           lose volatile state and queued messages / boot from hard state
//!   status             one line per node

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write;
use std::time::Duration;

use datadriven::TestCase;
use quorate::engine::{Config, HardState, Message, Output, Raft, Timing};

/// Bound on `stabilize`, so a livelock shows up as output instead of a hang.
const MAX_DELIVERIES: usize = 10_000;

struct Net {
    timing: Timing,
    ids: Vec<String>,
    nodes: BTreeMap<String, Option<Raft>>,
    hard: BTreeMap<String, HardState>,
    in_flight: VecDeque<(String, String, Message)>,
    cut: BTreeSet<(String, String)>,
    now: Duration,
    boots: u64,
}

fn secs(d: Duration) -> String {
    format!("{:.4}", d.as_secs_f64())
}

fn describe(m: &Message) -> String {
    match m {
        Message::Vote { term, pre_vote, transfer } => {
            let kind = if *pre_vote { "pre_vote" } else { "vote" };
            format!("{kind} term={term}{}", if *transfer { " transfer" } else { "" })
        }
        Message::VoteResponse { term, granted, pre_vote } => {
            let kind = if *pre_vote { "pre_vote_response" } else { "vote_response" };
            format!("{kind} term={term} {}", if *granted { "granted" } else { "rejected" })
        }
        Message::Heartbeat { term, seq } => format!("heartbeat term={term} seq={seq}"),
        Message::HeartbeatResponse { term, seq } => format!("heartbeat_response term={term} seq={seq}"),
        Message::TimeoutNow { term } => format!("timeout_now term={term}"),
    }
}

impl Net {
    fn new(ids: Vec<String>, timing: Timing) -> Net {
        let mut net = Net {
            timing,
            nodes: ids.iter().map(|id| (id.clone(), None)).collect(),
            hard: ids.iter().map(|id| (id.clone(), HardState::default())).collect(),
            ids,
            in_flight: VecDeque::new(),
            cut: BTreeSet::new(),
            now: Duration::ZERO,
            boots: 0,
        };
        for id in net.ids.clone() {
            let mut out = String::new();
            net.boot(&id, &mut out);
        }
        net
    }

    fn boot(&mut self, id: &str, out: &mut String) {
        self.boots += 1;
        let cfg = Config::new(id, self.ids.clone(), self.timing.clone(), self.boots).expect("valid transcript config");
        let mut raft = Raft::new(cfg, self.hard[id].clone());
        let outputs = raft.tick(self.now);
        self.nodes.insert(id.to_string(), Some(raft));
        self.carry_out(id, outputs, "", out);
        let deadline = self.node(id).next_deadline().expect("clock started");
        writeln!(out, "{id}: booted at {}, term={}, election timeout at {}", secs(self.now), self.hard[id].term, secs(deadline)).unwrap();
    }

    fn node(&mut self, id: &str) -> &mut Raft {
        self.nodes.get_mut(id).unwrap_or_else(|| panic!("no node {id:?}")).as_mut().unwrap_or_else(|| panic!("{id} is down"))
    }

    fn carry_out(&mut self, id: &str, outputs: Vec<Output>, indent: &str, out: &mut String) {
        for o in outputs {
            match o {
                Output::Persist(h) => {
                    let vote = h.voted_for.as_deref().unwrap_or("-");
                    writeln!(out, "{indent}{id}: persist term={} voted_for={vote}", h.term).unwrap();
                    self.hard.insert(id.to_string(), h);
                }
                Output::Send { to, message } => {
                    writeln!(out, "{indent}{id} -> {to}: {}", describe(&message)).unwrap();
                    self.in_flight.push_back((id.to_string(), to, message));
                }
                Output::Event(e) => {
                    let leader = e.leader.as_deref().unwrap_or("-");
                    let reason = e.reason.map(|r| format!(" reason={}", r.name())).unwrap_or_default();
                    let (kind, term) = (e.kind.name(), e.term);
                    writeln!(out, "{indent}{id}: event {kind} term={term} leader={leader}{reason}").unwrap();
                }
            }
        }
    }

    fn tick(&mut self, id: &str, out: &mut String) {
        let now = self.now;
        let outputs = self.node(id).tick(now);
        self.carry_out(id, outputs, "", out);
    }

    fn live(&self) -> Vec<String> {
        self.nodes.iter().filter(|(_, n)| n.is_some()).map(|(id, _)| id.clone()).collect()
    }

    fn blocked(&self, a: &str, b: &str) -> bool {
        self.cut.contains(&(a.to_string(), b.to_string())) || self.cut.contains(&(b.to_string(), a.to_string()))
    }

    fn deliver_one(&mut self, from: String, to: String, message: Message, out: &mut String) {
        let desc = describe(&message);
        if self.blocked(&from, &to) {
            writeln!(out, "{from} -> {to}: {desc} (dropped: link cut)").unwrap();
            return;
        }
        if self.nodes[&to].is_none() {
            writeln!(out, "{from} -> {to}: {desc} (dropped: {to} is down)").unwrap();
            return;
        }
        writeln!(out, "{from} -> {to}: {desc}").unwrap();
        let now = self.now;
        let outputs = self.node(&to).step(now, &from, message);
        if outputs.is_empty() {
            writeln!(out, "  {to}: (ignored)").unwrap();
        }
        self.carry_out(&to, outputs, "  ", out);
    }

    /// Delivers until nothing is in flight (or `MAX_DELIVERIES`, so a livelock shows as output).
    fn stabilize(&mut self, out: &mut String) {
        for _ in 0..MAX_DELIVERIES {
            let Some((f, t, m)) = self.in_flight.pop_front() else { return };
            self.deliver_one(f, t, m, out);
        }
        writeln!(out, "(still in flight after {MAX_DELIVERIES} deliveries)").unwrap();
    }

    fn status(&self, out: &mut String) {
        for (id, node) in &self.nodes {
            let Some(r) = node else {
                writeln!(out, "{id}: down, persisted term={}", self.hard[id].term).unwrap();
                continue;
            };
            let s = r.state();
            let lease = match (r.is_leader(self.now), s.lease_expiry) {
                (true, Some(e)) => format!(" lease_until={}", secs(e)),
                _ => String::new(),
            };
            writeln!(
                out,
                "{id}: {} term={} voted_for={} leader={} is_leader={}{lease}",
                s.role.name(),
                s.term,
                s.voted_for.as_deref().unwrap_or("-"),
                s.leader.as_deref().unwrap_or("-"),
                r.is_leader(self.now),
            )
            .unwrap();
        }
    }

    fn run(&mut self, tc: &mut TestCase) -> String {
        let mut out = String::new();
        writeln!(out, "t={}", secs(self.now)).unwrap();
        // Argument keys come from a HashMap: sort them, or multi-node commands would run in a random order.
        let mut names: Vec<String> = tc.args.keys().filter(|k| self.nodes.contains_key(*k)).cloned().collect();
        names.sort();
        match tc.directive.as_str() {
            "fire" => {
                for id in &names {
                    let deadline = self.node(id).next_deadline().expect("started");
                    self.now = self.now.max(deadline);
                    out.clear();
                    writeln!(out, "t={}", secs(self.now)).unwrap();
                    self.tick(id, &mut out);
                }
            }
            "advance" => {
                let step: f64 = tc.take_arg("secs").expect("advance secs=S");
                let quiet = tc.take_flag("quiet").expect("quiet");
                let end = self.now + Duration::from_secs_f64(step);
                let mut log = String::new();
                // Bounded: a 1 s advance at 50 ms heartbeats needs about 20 rounds per node.
                for _ in 0..10_000 {
                    let due = self
                        .live()
                        .into_iter()
                        .filter_map(|id| {
                            let d = self.nodes[&id].as_ref()?.next_deadline()?;
                            (d <= end).then_some((d, id))
                        })
                        .min();
                    let Some((at, id)) = due else { break };
                    self.now = self.now.max(at);
                    writeln!(log, "@{}", secs(self.now)).unwrap();
                    self.tick(&id, &mut log);
                    self.stabilize(&mut log);
                }
                self.now = end;
                out.clear();
                writeln!(out, "t={}", secs(self.now)).unwrap();
                let keep = |l: &&str| !quiet || l.contains(": persist") || l.contains(": event");
                let mut stamp = "";
                for line in log.lines() {
                    if line.starts_with('@') {
                        stamp = line;
                    } else if keep(&line) {
                        if !stamp.is_empty() {
                            writeln!(out, "{stamp}").unwrap();
                            stamp = "";
                        }
                        writeln!(out, "{}", if quiet { line.trim_start() } else { line }).unwrap();
                    }
                }
            }
            "campaign" => names.iter().for_each(|id| {
                let now = self.now;
                let outputs = self.node(id).campaign(now);
                if outputs.is_empty() {
                    writeln!(out, "{id}: (refused)").unwrap();
                }
                self.carry_out(id, outputs, "", &mut out);
            }),
            "resign" => names.iter().for_each(|id| {
                let now = self.now;
                let outputs = self.node(id).resign(now);
                self.carry_out(id, outputs, "", &mut out);
            }),
            "transfer" => {
                let from: String = tc.take_arg("from").expect("transfer from=A to=B");
                let to: String = tc.take_arg("to").expect("transfer from=A to=B");
                let now = self.now;
                match self.node(&from).transfer_leadership(now, &to) {
                    Ok(outputs) => self.carry_out(&from, outputs, "", &mut out),
                    Err(e) => writeln!(out, "{from}: error: {e}").unwrap(),
                }
            }
            "deliver" => {
                let from: Option<String> = tc.try_take_arg("from").expect("from=A");
                let to: Option<String> = tc.try_take_arg("to").expect("to=B");
                let (batch, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight).into_iter().partition(|(f, t, _)| {
                    from.as_ref().is_none_or(|x| x == f) && to.as_ref().is_none_or(|x| x == t)
                });
                self.in_flight.extend(later);
                for (f, t, m) in batch {
                    self.deliver_one(f, t, m, &mut out);
                }
            }
            "stabilize" => self.stabilize(&mut out),
            "cut" => {
                assert_eq!(names.len(), 2, "cut takes two nodes");
                self.cut.insert((names[0].clone(), names[1].clone()));
                writeln!(out, "cut {} <-> {}", names[0], names[1]).unwrap();
            }
            "isolate" => {
                for id in &names {
                    for other in self.ids.clone() {
                        if other != *id {
                            self.cut.insert((id.clone(), other));
                        }
                    }
                    writeln!(out, "isolated {id}").unwrap();
                }
            }
            "heal" => {
                self.cut.clear();
                writeln!(out, "healed").unwrap();
            }
            "crash" => names.iter().for_each(|id| {
                self.nodes.insert(id.clone(), None);
                let before = self.in_flight.len();
                self.in_flight.retain(|(f, _, _)| f != id);
                writeln!(out, "{id}: crashed ({} queued messages from it lost)", before - self.in_flight.len()).unwrap();
            }),
            "restart" => names.iter().for_each(|id| self.boot(id, &mut out)),
            "status" => self.status(&mut out),
            other => panic!("unknown command {other:?}"),
        }
        out
    }
}

#[test]
fn transcripts() {
    datadriven::walk("tests/testdata", |f| {
        let mut net: Option<Net> = None;
        f.run(|tc| {
            if tc.directive == "cluster" {
                let ids: Vec<String> = tc.take_args("ids").expect("cluster ids=(a,b,c)");
                let mut timing = Timing::default();
                if let Some(p) = tc.try_take_arg::<bool>("pre_vote").expect("pre_vote=BOOL") {
                    timing.pre_vote = p;
                }
                if let Some(c) = tc.try_take_arg::<bool>("check_quorum").expect("check_quorum=BOOL") {
                    timing.check_quorum = c;
                }
                let n = Net::new(ids, timing);
                let mut out = String::new();
                n.status(&mut out);
                for (id, node) in &n.nodes {
                    let deadline = node.as_ref().and_then(Raft::next_deadline).expect("booted");
                    writeln!(out, "{id}: election timeout at {}", secs(deadline)).unwrap();
                }
                net = Some(n);
                return out;
            }
            net.as_mut().expect("a transcript starts with `cluster`").run(tc)
        })
    });
}
