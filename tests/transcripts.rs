//! Scripted transcripts in the style of etcd-io/raft's `testdata/*.txt`: a reviewer reads each file
//! top to bottom as a story. `REWRITE=1 cargo test --test transcripts` regenerates the expected
//! output after a deliberate change.
//!
//! Each command prints `t=` (the clock once it is done) and then what happened, in order, one fact
//! a line: persists, events (a `demoted` with its `reason=`), and messages. Each message is printed
//! once per command: where it arrives, with what the receiver persisted and announced indented
//! below it (the messages it sent in reply are printed where they arrive in turn), or where it is
//! dropped, with why. A message still in flight when the command ends is printed where it was sent
//! instead, so the `deliver` or `stabilize` that later delivers it prints it again as it arrives.
//!
//! Commands:
//!   cluster ids=(a,b,c) [pre_vote=false] [check_quorum=false] [algorithm=bully|ring]
//!                      a fresh group, all booted at t=0 (raft unless `algorithm` says otherwise;
//!                      bully and ring rank the members by id, so the last id is the highest)
//!   fire a [b ...]     jump the clock to each named node's next deadline, earliest first, and tick
//!                      that node alone: its messages stay in flight, and the other nodes wait even
//!                      past their own deadlines (those are listed)
//!   advance secs=0.1 [quiet]   let time pass with a working network: what is in flight arrives at
//!                      once, then timers fire in deadline order and every message they cause is
//!                      delivered at once; `quiet` prints only persists and events
//!   campaign a | resign a | transfer from=a to=b
//!   deliver [from=a] [to=b]   deliver the queued messages (that match) once; replies are queued
//!   stabilize          deliver until nothing is in flight
//!   cut a b | isolate a | heal     drop traffic on links (checked when delivered)
//!   crash a | restart a           lose volatile state and queued messages / boot from hard state
//!   status             one line per node
//!   timers             each node's next deadline (for a follower or candidate, its election timeout)
//! An argument that is neither a node nor one the command takes fails the transcript.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::time::Duration;

use datadriven::TestCase;
use quorate::engine::{Algorithm, Config, Engine, HardState, Message, Output, Role, Timing};

/// Bound on `stabilize`, so a livelock shows up as output instead of a hang.
const MAX_DELIVERIES: usize = 10_000;
/// Bound on the timers one `advance` fires (a 1 s advance at 50 ms heartbeats needs about 20).
const MAX_TIMERS: usize = 10_000;

struct Flight {
    id: u64,
    from: String,
    to: String,
    message: Message,
}

/// One command's output, in the order things happened. A send's line is withdrawn once the same
/// command delivers (or drops) the message: the arrival prints it instead.
#[derive(Default)]
struct Log {
    lines: Vec<(Option<u64>, String)>,
    arrived: HashSet<u64>,
}

impl Log {
    fn line(&mut self, text: String) {
        self.lines.push((None, text));
    }

    fn sent(&mut self, id: u64, text: String) {
        self.lines.push((Some(id), text));
    }

    fn arrived(&mut self, id: u64) {
        self.arrived.insert(id);
    }

    /// The lines to print: `quiet` keeps only persists and events (unindented); an `@time` stamp
    /// is printed only above a line that is kept.
    fn render(&self, quiet: bool) -> String {
        let mut out = String::new();
        let mut stamp: Option<&str> = None;
        for (id, line) in &self.lines {
            if id.is_some_and(|i| self.arrived.contains(&i)) {
                continue;
            }
            if line.starts_with('@') {
                stamp = Some(line);
                continue;
            }
            if quiet && !(line.contains(": persist") || line.contains(": event")) {
                continue;
            }
            if let Some(s) = stamp.take() {
                out.push_str(s);
                out.push('\n');
            }
            out.push_str(if quiet { line.trim_start() } else { line });
            out.push('\n');
        }
        out
    }
}

struct Net {
    timing: Timing,
    algorithm: Algorithm,
    ids: Vec<String>,
    nodes: BTreeMap<String, Option<Engine>>,
    hard: BTreeMap<String, HardState>,
    in_flight: VecDeque<Flight>,
    next_message_id: u64,
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
        Message::Election { epoch } => format!("election epoch={epoch}"),
        Message::Ok { epoch } => format!("ok epoch={epoch}"),
        Message::Coordinator { epoch } => format!("coordinator epoch={epoch}"),
        Message::Alive { epoch, seq } => format!("alive epoch={epoch} seq={seq}"),
        Message::AliveAck { epoch, seq } => format!("alive_ack epoch={epoch} seq={seq}"),
        Message::RingElection { epoch, candidate, hop } => {
            format!("ring_election epoch={epoch} candidate={candidate} hop={hop}")
        }
        Message::RingCoordinator { epoch, leader, hop } => {
            format!("ring_coordinator epoch={epoch} leader={leader} hop={hop}")
        }
        Message::RingAck { hop } => format!("ring_ack hop={hop}"),
        Message::RingAlive { epoch, seq } => format!("ring_alive epoch={epoch} seq={seq}"),
        Message::RingAliveAck { epoch, seq } => format!("ring_alive_ack epoch={epoch} seq={seq}"),
    }
}

impl Net {
    fn new(ids: Vec<String>, timing: Timing, algorithm: Algorithm) -> Net {
        let mut net = Net {
            timing,
            algorithm,
            nodes: ids.iter().map(|id| (id.clone(), None)).collect(),
            hard: ids.iter().map(|id| (id.clone(), HardState::default())).collect(),
            ids,
            in_flight: VecDeque::new(),
            next_message_id: 0,
            cut: BTreeSet::new(),
            now: Duration::ZERO,
            boots: 0,
        };
        for id in net.ids.clone() {
            let mut log = Log::default();
            net.boot(&id, &mut log);
            // `cluster` prints the status instead of the boot lines: there must be nothing else.
            assert_eq!(log.lines.len(), 1, "a fresh node does something at boot: {:?}", log.lines);
        }
        net
    }

    fn boot(&mut self, id: &str, log: &mut Log) {
        self.boots += 1;
        let cfg = Config::new(id, self.ids.clone(), self.timing.clone(), self.boots)
            .expect("valid transcript config")
            .with_algorithm(self.algorithm);
        let mut raft = Engine::new(cfg, self.hard[id].clone());
        let outputs = raft.tick(self.now);
        self.nodes.insert(id.to_string(), Some(raft));
        self.carry_out(id, outputs, "", log);
        let deadline = self.node(id).next_deadline().expect("clock started");
        log.line(format!(
            "{id}: booted at {}, term={}, election timeout at {}",
            secs(self.now),
            self.hard[id].term,
            secs(deadline)
        ));
    }

    fn node(&mut self, id: &str) -> &mut Engine {
        self.nodes
            .get_mut(id)
            .unwrap_or_else(|| panic!("no node {id:?}"))
            .as_mut()
            .unwrap_or_else(|| panic!("{id} is down"))
    }

    fn deadline(&self, id: &str) -> Duration {
        let node = self.nodes[id].as_ref().unwrap_or_else(|| panic!("{id} is down"));
        node.next_deadline().expect("booted")
    }

    fn carry_out(&mut self, id: &str, outputs: Vec<Output>, indent: &str, log: &mut Log) {
        for o in outputs {
            match o {
                Output::Persist(h) => {
                    let vote = h.voted_for.as_deref().unwrap_or("-");
                    log.line(format!("{indent}{id}: persist term={} voted_for={vote}", h.term));
                    self.hard.insert(id.to_string(), h);
                }
                Output::Send { to, message } => {
                    self.next_message_id += 1;
                    let flight = Flight { id: self.next_message_id, from: id.to_string(), to, message };
                    log.sent(flight.id, format!("{indent}{id} -> {}: {}", flight.to, describe(&flight.message)));
                    self.in_flight.push_back(flight);
                }
                Output::Event(e) => {
                    let leader = e.leader.as_deref().unwrap_or("-");
                    let reason = e.reason.map(|r| format!(" reason={}", r.name())).unwrap_or_default();
                    let (kind, term) = (e.kind.name(), e.term);
                    log.line(format!("{indent}{id}: event {kind} term={term} leader={leader}{reason}"));
                }
            }
        }
    }

    fn tick(&mut self, id: &str, log: &mut Log) {
        let now = self.now;
        let outputs = self.node(id).tick(now);
        self.carry_out(id, outputs, "", log);
    }

    fn live(&self) -> Vec<String> {
        self.nodes.iter().filter(|(_, n)| n.is_some()).map(|(id, _)| id.clone()).collect()
    }

    fn blocked(&self, a: &str, b: &str) -> bool {
        self.cut.contains(&(a.to_string(), b.to_string())) || self.cut.contains(&(b.to_string(), a.to_string()))
    }

    fn deliver_one(&mut self, flight: Flight, log: &mut Log) {
        let Flight { id, from, to, message } = flight;
        log.arrived(id);
        let desc = describe(&message);
        if self.blocked(&from, &to) {
            log.line(format!("{from} -> {to}: {desc} (dropped: link cut)"));
            return;
        }
        if self.nodes[&to].is_none() {
            log.line(format!("{from} -> {to}: {desc} (dropped: {to} is down)"));
            return;
        }
        log.line(format!("{from} -> {to}: {desc}"));
        let now = self.now;
        let outputs = self.node(&to).step(now, &from, message);
        self.carry_out(&to, outputs, "  ", log);
    }

    /// Delivers until nothing is in flight (or `MAX_DELIVERIES`, so a livelock shows as output).
    fn stabilize(&mut self, log: &mut Log) {
        for _ in 0..MAX_DELIVERIES {
            let Some(flight) = self.in_flight.pop_front() else { return };
            self.deliver_one(flight, log);
        }
        log.line(format!("(still in flight after {MAX_DELIVERIES} deliveries)"));
    }

    fn status(&self, log: &mut Log) {
        for (id, node) in &self.nodes {
            let Some(r) = node else {
                log.line(format!("{id}: down, persisted term={}", self.hard[id].term));
                continue;
            };
            let s = r.state();
            let lease = match (r.is_leader(self.now), s.lease_expiry) {
                (true, Some(e)) => format!(" lease_until={}", secs(e)),
                _ => String::new(),
            };
            log.line(format!(
                "{id}: {} term={} voted_for={} leader={} is_leader={}{lease}",
                s.role.name(),
                s.term,
                s.voted_for.as_deref().unwrap_or("-"),
                s.leader.as_deref().unwrap_or("-"),
                r.is_leader(self.now),
            ));
        }
    }

    fn timers(&self, log: &mut Log) {
        for (id, node) in &self.nodes {
            let Some(r) = node else {
                log.line(format!("{id}: down"));
                continue;
            };
            let at = secs(self.deadline(id));
            log.line(match r.role() {
                Role::Leader => format!("{id}: leader, next deadline at {at}"),
                Role::Candidate if self.algorithm == Algorithm::Bully => {
                    format!("{id}: candidate, waits for ok until {at}")
                }
                Role::Candidate if self.algorithm == Algorithm::Ring => {
                    format!("{id}: participant, next deadline at {at}")
                }
                _ => format!("{id}: election timeout at {at}"),
            });
        }
    }

    fn run(&mut self, tc: &mut TestCase) -> String {
        let mut log = Log::default();
        let mut quiet = false;
        // Node arguments come from a HashMap: sort them, or multi-node commands would run in a random order.
        let mut names: Vec<String> = tc.args.keys().filter(|k| self.nodes.contains_key(*k)).cloned().collect();
        names.sort();
        for id in &names {
            tc.args.remove(id);
        }
        let needs_nodes = ["fire", "campaign", "resign", "crash", "restart", "isolate"];
        assert!(
            !needs_nodes.contains(&tc.directive.as_str()) || !names.is_empty(),
            "{}: no node of this cluster named (arguments: {:?})",
            tc.directive,
            tc.args.keys().collect::<Vec<_>>()
        );
        match tc.directive.as_str() {
            "fire" => {
                let stamped = names.len() > 1;
                let mut pending = names.clone();
                while !pending.is_empty() {
                    // The earliest deadline first, so the clock never jumps past one it then fires late.
                    let (at, i) =
                        pending.iter().enumerate().map(|(i, id)| (self.deadline(id), i)).min().expect("not empty");
                    let id = pending.remove(i);
                    self.now = self.now.max(at);
                    if stamped {
                        log.line(format!("@{}", secs(self.now)));
                    }
                    self.tick(&id, &mut log);
                }
                let waiting: Vec<String> = self
                    .live()
                    .into_iter()
                    .filter(|id| !names.contains(id))
                    .filter(|id| self.deadline(id) <= self.now)
                    .collect();
                if !waiting.is_empty() {
                    log.line(format!("waiting past their deadlines: {}", waiting.join(", ")));
                }
            }
            "advance" => {
                let step: f64 = tc.take_arg("secs").expect("advance secs=S");
                quiet = tc.take_flag("quiet").expect("quiet");
                let end = self.now + Duration::from_secs_f64(step);
                // A working network: what an earlier command left in flight arrives now.
                log.line(format!("@{}", secs(self.now)));
                self.stabilize(&mut log);
                let mut fired = 0;
                loop {
                    let due = self
                        .live()
                        .into_iter()
                        .filter_map(|id| {
                            let d = self.nodes[&id].as_ref()?.next_deadline()?;
                            (d <= end).then_some((d, id))
                        })
                        .min();
                    let Some((at, id)) = due else { break };
                    if fired == MAX_TIMERS {
                        log.line(format!("(timers still due after {MAX_TIMERS} fired)"));
                        break;
                    }
                    fired += 1;
                    self.now = self.now.max(at);
                    log.line(format!("@{}", secs(self.now)));
                    self.tick(&id, &mut log);
                    self.stabilize(&mut log);
                }
                self.now = self.now.max(end);
            }
            "campaign" => names.iter().for_each(|id| {
                let now = self.now;
                let outputs = self.node(id).campaign(now);
                if outputs.is_empty() {
                    log.line(format!("{id}: (refused)"));
                }
                self.carry_out(id, outputs, "", &mut log);
            }),
            "resign" => names.iter().for_each(|id| {
                let now = self.now;
                let outputs = self.node(id).resign(now);
                self.carry_out(id, outputs, "", &mut log);
            }),
            "transfer" => {
                let from: String = tc.take_arg("from").expect("transfer from=A to=B");
                let to: String = tc.take_arg("to").expect("transfer from=A to=B");
                let now = self.now;
                match self.node(&from).transfer_leadership(now, &to) {
                    Ok(outputs) => self.carry_out(&from, outputs, "", &mut log),
                    Err(e) => log.line(format!("{from}: error: {e}")),
                }
            }
            "deliver" => {
                let from: Option<String> = tc.try_take_arg("from").expect("from=A");
                let to: Option<String> = tc.try_take_arg("to").expect("to=B");
                let (batch, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight).into_iter().partition(|f| {
                    from.as_ref().is_none_or(|x| *x == f.from) && to.as_ref().is_none_or(|x| *x == f.to)
                });
                self.in_flight.extend(later);
                for flight in batch {
                    self.deliver_one(flight, &mut log);
                }
            }
            "stabilize" => self.stabilize(&mut log),
            "cut" => {
                assert_eq!(names.len(), 2, "cut takes two nodes");
                self.cut.insert((names[0].clone(), names[1].clone()));
                log.line(format!("cut {} <-> {}", names[0], names[1]));
            }
            "isolate" => {
                for id in &names {
                    for other in self.ids.clone() {
                        if other != *id {
                            self.cut.insert((id.clone(), other));
                        }
                    }
                    log.line(format!("isolated {id}"));
                }
            }
            "heal" => {
                self.cut.clear();
                log.line("healed".to_string());
            }
            "crash" => names.iter().for_each(|id| {
                self.nodes.insert(id.clone(), None);
                let before = self.in_flight.len();
                self.in_flight.retain(|f| f.from != *id);
                log.line(format!("{id}: crashed ({} queued messages from it lost)", before - self.in_flight.len()));
            }),
            "restart" => names.iter().for_each(|id| self.boot(id, &mut log)),
            "status" => self.status(&mut log),
            "timers" => self.timers(&mut log),
            other => panic!("unknown command {other:?}"),
        }
        tc.expect_empty().unwrap_or_else(|e| panic!("{}: {e}", tc.directive));
        format!("t={}\n{}", secs(self.now), log.render(quiet))
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
                let algorithm = match tc.try_take_arg::<String>("algorithm").expect("algorithm=NAME") {
                    Some(name) => Algorithm::parse(&name).expect("a known algorithm"),
                    None => Algorithm::Raft,
                };
                tc.expect_empty().unwrap_or_else(|e| panic!("cluster: {e}"));
                let n = Net::new(ids, timing, algorithm);
                let mut log = Log::default();
                n.status(&mut log);
                n.timers(&mut log);
                net = Some(n);
                return log.render(false);
            }
            net.as_mut().expect("a transcript starts with `cluster`").run(tc)
        })
    });
}
