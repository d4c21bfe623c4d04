//! Real nodes over TCP on loopback: election, failover, authentication. Generous bounds only.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use quorate::engine::{Config, Timing};
use quorate::runtime::{NodeConfig, RunningNode};

const PATIENCE: Duration = Duration::from_secs(15);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn configs(ids: &[&str], secret: Option<&[u8]>, cluster: &str) -> Vec<NodeConfig> {
    let addresses: BTreeMap<String, String> =
        ids.iter().map(|id| (id.to_string(), format!("127.0.0.1:{}", free_port()))).collect();
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            let engine = Config::new(*id, ids.iter().copied(), Timing::default(), i as u64).unwrap();
            NodeConfig::new(
                engine,
                addresses.clone(),
                None,
                None,
                secret.map(<[u8]>::to_vec).into_iter().collect(),
                cluster,
            )
            .unwrap()
        })
        .collect()
}

/// The one node every running node agrees leads, once it holds its lease.
fn agreed_leader(nodes: &[(String, RunningNode)]) -> Option<String> {
    let now = Instant::now();
    let snaps: Vec<_> = nodes.iter().map(|(id, n)| (id.clone(), n.shared.read().clone())).collect();
    let leading: Vec<_> = snaps.iter().filter(|(_, s)| s.is_leader(now)).map(|(id, _)| id.clone()).collect();
    let [leader] = leading.as_slice() else { return None };
    snaps.iter().all(|(_, s)| s.leader.as_ref() == Some(leader)).then(|| leader.clone())
}

fn wait_for(what: &str, mut f: impl FnMut() -> Option<String>) -> String {
    let until = Instant::now() + PATIENCE;
    while Instant::now() < until {
        if let Some(v) = f() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn three_nodes_elect_one_leader_and_fail_over_when_it_crashes() {
    let cfgs = configs(&["a", "b", "c"], Some(b"0123456789abcdef"), "net-test");
    let mut nodes: Vec<(String, RunningNode)> = cfgs
        .into_iter()
        .map(|c| {
            (c.id().clone(), {
                let s = quorate::runtime::new_shared(&c);
                RunningNode::start(c, s).unwrap()
            })
        })
        .collect();
    let first = wait_for("a first leader", || agreed_leader(&nodes));
    let first_term = nodes.iter().find(|(id, _)| *id == first).unwrap().1.shared.read().term;

    let i = nodes.iter().position(|(id, _)| *id == first).unwrap();
    let (_, mut crashed) = nodes.remove(i);
    crashed.crash();
    let second = wait_for("a leader after the crash", || agreed_leader(&nodes));
    assert_ne!(second, first);
    let second_term = nodes.iter().find(|(id, _)| *id == second).unwrap().1.shared.read().term;
    assert!(second_term > first_term);
    for (_, n) in &nodes {
        assert_eq!(n.shared.counters.messages_rejected.load(Ordering::Relaxed), 0);
    }
    for (_, mut n) in nodes {
        assert!(n.stop(true, Duration::from_secs(5)));
    }
}

#[test]
fn a_node_with_the_wrong_secret_or_cluster_never_joins_nor_changes_terms() {
    let mut cfgs = configs(&["a", "b", "c"], Some(b"0123456789abcdef"), "net-auth");
    let remade = |c: &NodeConfig, secret: Option<&[u8]>, cluster: &str| {
        let bind = Some(c.bind().to_string());
        NodeConfig::new(
            c.engine().clone(),
            c.addresses().clone(),
            bind,
            None,
            secret.map(<[u8]>::to_vec).into_iter().collect(),
            cluster,
        )
        .unwrap()
    };
    cfgs[2] = remade(&cfgs[2], Some(b"the-wrong-secret!!"), "net-auth");
    let mut cfgs2 = configs(&["a", "b", "c"], None, "net-auth");
    cfgs2[2] = remade(&cfgs2[2], None, "another-cluster");
    for cfgs in [cfgs, cfgs2] {
        let nodes: Vec<(String, RunningNode)> = cfgs
            .into_iter()
            .map(|c| {
                (c.id().clone(), {
                    let s = quorate::runtime::new_shared(&c);
                    RunningNode::start(c, s).unwrap()
                })
            })
            .collect();
        let (good, bad) = nodes.split_at(2);
        let leader = wait_for("the two good nodes to elect", || agreed_leader(good));
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(agreed_leader(good).as_deref(), Some(leader.as_str()), "the outsider disturbed nobody");
        let bad_snap = bad[0].1.shared.read().clone();
        assert_ne!(bad_snap.leader.as_deref(), Some(leader.as_str()), "the outsider never learns the leader");
        let good_terms: Vec<u64> = good.iter().map(|(_, n)| n.shared.read().term).collect();
        assert!(good_terms.iter().all(|t| *t <= 2), "terms stayed low: {good_terms:?}");
        let rejected: u64 =
            nodes.iter().map(|(_, n)| n.shared.counters.messages_rejected.load(Ordering::Relaxed)).sum();
        assert!(rejected > 0, "the refused handshakes were counted");
        for (_, mut n) in nodes {
            n.stop(false, Duration::from_secs(5));
        }
    }
}

/// Without a secret, anyone can send frames. One forged heartbeat with term 2^64-1 must not be
/// adopted (term + 1 would wrap and no node could ever win again): it is refused and counted.
#[test]
fn a_forged_frame_with_an_absurd_term_is_refused_and_counted() {
    use futures_util::{SinkExt, StreamExt};
    use quorate::engine::Message;
    use quorate::runtime::wire::{self, Auth, Frame, Group};

    let cfgs = configs(&["a", "b", "c"], None, "forge-test");
    let target = cfgs[0].clone();
    let node = {
        let s = quorate::runtime::new_shared(&target);
        RunningNode::start(target.clone(), s).unwrap()
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(target.bind()).await.unwrap();
        let mut framed = tokio_util::codec::Framed::new(stream, wire::codec());
        let auth = Auth::new(None);
        let nonce = wire::fresh_nonce();
        let group = Group { cluster: "forge-test".into(), algorithm: "raft".into() };
        framed.send(wire::encode(&auth.hello(&group, "b", "a", nonce))).await.unwrap();
        let welcome = wire::decode(&framed.next().await.unwrap().unwrap()).unwrap();
        let theirs = auth.check_welcome(welcome, "b", "a", nonce).unwrap();
        let mut session = auth.session("b", "a", nonce, theirs);
        framed.send(wire::encode(&session.ready())).await.unwrap();
        let forged: Frame = session.seal(Message::Heartbeat { term: u64::MAX, seq: 1 });
        framed.send(wire::encode(&forged)).await.unwrap();
    });
    let refused = wait_for("the forged frame counted", || {
        let by_reason = node.shared.counters.rejected_by_reason();
        by_reason.get("implausible_term").map(|n| n.to_string())
    });
    assert_eq!(refused, "1");
    assert!(node.shared.read().term < 1000, "the absurd term was not adopted");
}

mod hardened_accept {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use quorate::runtime::wire::{self, Auth, Group};
    use tokio::net::TcpStream;
    use tokio_util::codec::Framed;

    const SECRET: &[u8] = b"0123456789abcdef";

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    /// Hello and Welcome as peer `from` would do them; Ready only if `ready`.
    async fn handshake(
        addr: &str,
        from: &str,
        ready: bool,
    ) -> Framed<TcpStream, tokio_util::codec::LengthDelimitedCodec> {
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut framed = Framed::new(stream, wire::codec());
        let auth = Auth::new(Some(SECRET.to_vec()));
        let nonce = wire::fresh_nonce();
        let group = Group { cluster: "hard-test".into(), algorithm: "raft".into() };
        framed.send(wire::encode(&auth.hello(&group, from, "a", nonce))).await.unwrap();
        let welcome = wire::decode(&framed.next().await.unwrap().unwrap()).unwrap();
        let theirs = auth.check_welcome(welcome, from, "a", nonce).unwrap();
        if ready {
            framed.send(wire::encode(&auth.session(from, "a", nonce, theirs).ready())).await.unwrap();
        }
        framed
    }

    /// Whether the node closes the connection within `limit`.
    async fn closed_within(
        framed: &mut Framed<TcpStream, tokio_util::codec::LengthDelimitedCodec>,
        limit: Duration,
    ) -> bool {
        matches!(tokio::time::timeout(limit, framed.next()).await, Ok(None) | Ok(Some(Err(_))))
    }

    fn start(ids: &[&str]) -> (NodeConfig, RunningNode) {
        let cfg = configs(ids, Some(SECRET), "hard-test").remove(0);
        let node = RunningNode::start(cfg.clone(), quorate::runtime::new_shared(&cfg)).unwrap();
        (cfg, node)
    }

    #[test]
    fn a_replayed_hello_without_the_session_key_is_closed_at_the_handshake_timeout() {
        let (cfg, node) = start(&["a", "b", "c"]);
        rt().block_on(async {
            let mut replay = handshake(cfg.bind(), "b", false).await;
            assert!(closed_within(&mut replay, Duration::from_secs(10)).await, "the connection was closed");
        });
        assert_eq!(node.shared.counters.rejected_by_reason().get("not_ready"), Some(&1));
    }

    #[test]
    fn a_peer_keeps_at_most_two_connections_and_the_newest_wins() {
        let (cfg, node) = start(&["a", "b", "c"]);
        rt().block_on(async {
            let mut first = handshake(cfg.bind(), "b", true).await;
            let mut second = handshake(cfg.bind(), "b", true).await;
            let mut third = handshake(cfg.bind(), "b", true).await;
            assert!(closed_within(&mut first, Duration::from_secs(5)).await, "the oldest was closed");
            assert!(!closed_within(&mut second, Duration::from_millis(300)).await, "the second stays");
            assert!(!closed_within(&mut third, Duration::from_millis(300)).await, "the newest stays");
        });
        drop(node);
    }

    #[test]
    fn an_authenticated_connection_that_goes_silent_is_closed_and_one_with_keepalives_is_kept() {
        use quorate::runtime::transport::IDLE_TIMEOUT;
        let (cfg, node) = start(&["a", "b", "c"]);
        rt().block_on(async {
            let mut silent = handshake(cfg.bind(), "b", true).await;
            let started = Instant::now();
            assert!(closed_within(&mut silent, IDLE_TIMEOUT * 3).await, "closed");
            assert!(started.elapsed() >= IDLE_TIMEOUT, "not before the idle timeout");

            // What a dialer with nothing to say does: a keepalive every second.
            let stream = TcpStream::connect(cfg.bind()).await.unwrap();
            let mut live = Framed::new(stream, wire::codec());
            let auth = Auth::new(Some(SECRET.to_vec()));
            let nonce = wire::fresh_nonce();
            let group = Group { cluster: "hard-test".into(), algorithm: "raft".into() };
            live.send(wire::encode(&auth.hello(&group, "c", "a", nonce))).await.unwrap();
            let welcome = wire::decode(&live.next().await.unwrap().unwrap()).unwrap();
            let theirs = auth.check_welcome(welcome, "c", "a", nonce).unwrap();
            let mut session = auth.session("c", "a", nonce, theirs);
            live.send(wire::encode(&session.ready())).await.unwrap();
            let until = Instant::now() + IDLE_TIMEOUT + Duration::from_secs(2);
            while Instant::now() < until {
                assert!(!closed_within(&mut live, Duration::from_secs(1)).await, "a live connection was closed");
                live.send(wire::encode(&session.keepalive())).await.unwrap();
            }
        });
        assert_eq!(node.shared.counters.rejected_by_reason().get("bad_mac"), None);
    }

    #[test]
    fn half_open_connections_are_capped_and_the_rest_closed_at_once() {
        let (cfg, node) = start(&["a", "b", "c"]);
        rt().block_on(async {
            let mut idle = Vec::new();
            for _ in 0..100 {
                idle.push(Framed::new(TcpStream::connect(cfg.bind()).await.unwrap(), wire::codec()));
            }
            let mut closed = 0;
            for f in idle.iter_mut().skip(64) {
                if closed_within(f, Duration::from_secs(1)).await {
                    closed += 1;
                }
            }
            assert!(closed >= 30, "connections past the cap are closed at once ({closed} of 36)");
        });
        let refused = node.shared.counters.rejected_by_reason().get("too_many_connections").copied().unwrap_or(0);
        assert!(refused >= 30, "{refused}");
    }
}
