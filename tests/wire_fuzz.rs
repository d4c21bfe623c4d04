//! Fuzzing the wire (proptest): the frame decoder, the handshake and session checks, and a running
//! node fed garbage over TCP on loopback.
//!
//! - Arbitrary bytes, arbitrary frames and mutated genuine frames never panic any of
//!   `decode`, `Auth::check_hello`, `check_welcome`, `Session::check_ready`, `Session::open`,
//!   `Session::open_any` (messages and keepalives).
//! - With a secret, a frame passes a check only if it *is* the genuine frame for that check: any
//!   mutation that changes what the frame decodes to (bit flips, inserted, removed, overwritten
//!   bytes, truncation, splices) is refused.
//! - The length-delimited codec refuses an oversized length prefix before allocating, and never
//!   panics on any byte stream.
//! - A running node (a lone member of three, so its term stays 0 by itself: pre-vote never wins
//!   without a majority) fed random bytes, framed garbage, oversized and truncated frames and
//!   mutated handshakes over TCP never crashes, never changes its term or vote, counts what it
//!   refused, and still completes a genuine handshake afterwards.
//!
//! Case counts are small by default (a few seconds in CI); `QUORATE_FUZZ_CASES=100000 cargo test
//! --test wire_fuzz` runs a long fuzz (the TCP properties get a tenth of that).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use quorate::engine::{Config, Message, Timing};
use quorate::runtime::wire::{self, Auth, Frame, Group, Nonce, Session, MAX_FRAME_BYTES, PROTOCOL_VERSION};
use quorate::runtime::{Health, NodeConfig, RunningNode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::bytes::{BufMut, BytesMut};
use tokio_util::codec::{Decoder, Framed};

const SECRET: &[u8] = b"0123456789abcdef-fuzz";

fn cases(default: u32, divisor: u32) -> u32 {
    std::env::var("QUORATE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .map_or(default, |n| (n / divisor).max(1))
}

fn config(default: u32) -> ProptestConfig {
    ProptestConfig { cases: cases(default, 1), failure_persistence: None, ..ProptestConfig::default() }
}

fn group() -> Group {
    Group { cluster: "fuzz".into(), algorithm: "raft".into() }
}

fn members() -> Vec<String> {
    vec!["a".into(), "b".into(), "c".into()]
}

// ----- strategies --------------------------------------------------------------------------------

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u64>(), any::<bool>(), any::<bool>()).prop_map(|(term, pre_vote, transfer)| Message::Vote {
            term,
            pre_vote,
            transfer
        }),
        (any::<u64>(), any::<bool>(), any::<bool>()).prop_map(|(term, granted, pre_vote)| Message::VoteResponse {
            term,
            granted,
            pre_vote
        }),
        (any::<u64>(), any::<u64>()).prop_map(|(term, seq)| Message::Heartbeat { term, seq }),
        (any::<u64>(), any::<u64>()).prop_map(|(term, seq)| Message::HeartbeatResponse { term, seq }),
        any::<u64>().prop_map(|term| Message::TimeoutNow { term }),
    ]
}

fn arb_name() -> impl Strategy<Value = String> {
    prop_oneof![Just("a".to_string()), Just("b".to_string()), Just("c".to_string()), Just(String::new()), "\\PC{0,12}"]
}

fn arb_mac() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![Just(Vec::new()), prop::collection::vec(any::<u8>(), 32), prop::collection::vec(any::<u8>(), 0..70)]
}

/// Any frame at all, most of them nonsense: what a peer could send after a successful decode.
fn arb_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (
            prop_oneof![Just(PROTOCOL_VERSION), any::<u16>()],
            prop_oneof![Just("fuzz".to_string()), "\\PC{0,12}"],
            prop_oneof![Just("raft".to_string()), "\\PC{0,8}"],
            arb_name(),
            arb_name(),
            any::<Nonce>(),
            arb_mac()
        )
            .prop_map(|(version, cluster, algorithm, from, to, nonce, mac)| Frame::Hello {
                version,
                cluster,
                algorithm,
                from,
                to,
                nonce,
                mac
            }),
        (any::<Nonce>(), arb_mac()).prop_map(|(nonce, mac)| Frame::Welcome { nonce, mac }),
        "\\PC{0,40}".prop_map(|reason| Frame::Refused { reason }),
        arb_mac().prop_map(|mac| Frame::Ready { mac }),
        (any::<u64>(), arb_mac()).prop_map(|(seq, mac)| Frame::Keepalive { seq, mac }),
        (any::<u64>(), arb_message(), arb_mac()).prop_map(|(seq, body, mac)| Frame::Message { seq, body, mac }),
    ]
}

/// One edit of an encoded frame; positions are taken modulo the length.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
    Append(Vec<u8>),
    /// Copies a run of the frame over another place in it.
    Splice(usize, usize, usize),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 0u8..8).prop_map(|(i, bit)| Mutation::Flip(i, bit)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<usize>().prop_map(Mutation::Remove),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => prop::collection::vec(any::<u8>(), 1..8).prop_map(Mutation::Append),
        1 => (any::<usize>(), any::<usize>(), 1usize..16).prop_map(|(a, b, n)| Mutation::Splice(a, b, n)),
    ]
}

fn mutate(bytes: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for m in mutations {
        let len = out.len();
        match m {
            Mutation::Flip(i, bit) if len > 0 => out[i % len] ^= 1 << bit,
            Mutation::Set(i, b) if len > 0 => out[i % len] = *b,
            Mutation::Insert(i, b) => out.insert(i % (len + 1), *b),
            Mutation::Remove(i) if len > 0 => {
                out.remove(i % len);
            }
            Mutation::Truncate(i) => out.truncate(i % (len + 1)),
            Mutation::Append(tail) => out.extend_from_slice(tail),
            Mutation::Splice(from, to, n) if len > 0 => {
                let (from, to) = (from % len, to % len);
                let n = (*n).min(len - from).min(len - to);
                let run = out[from..from + n].to_vec();
                out[to..to + n].copy_from_slice(&run);
            }
            _ => {}
        }
    }
    out
}

// ----- the handshake of dialer "b" to acceptor "a", every frame genuine -----------------------------

struct Genuine {
    dialer_nonce: Nonce,
    hello: Frame,
    welcome: Frame,
    ready: Frame,
    /// The dialer's first frame after Ready: a message, or (another run) a keepalive.
    message: Frame,
    keepalive: Frame,
    /// The acceptor's session, before it has opened any message.
    acceptor: Session,
}

fn genuine(auth: &Auth, dialer_nonce: Nonce, acceptor_nonce: Nonce, body: Message) -> Genuine {
    let hello = auth.hello(&group(), "b", "a", dialer_nonce);
    let welcome = auth.welcome("b", "a", dialer_nonce, acceptor_nonce);
    let mut dialer = auth.session("b", "a", dialer_nonce, acceptor_nonce);
    let ready = dialer.ready();
    let keepalive = dialer.clone().keepalive();
    let message = dialer.seal(body);
    let acceptor = auth.session("b", "a", dialer_nonce, acceptor_nonce);
    Genuine { dialer_nonce, hello, welcome, ready, message, keepalive, acceptor }
}

/// Runs `frame` through every check of the handshake and the session. With a secret, each check
/// passes only the genuine frame it is for; without one, nothing may panic.
fn every_check(auth: &Auth, g: &Genuine, frame: &Frame, secret: bool) -> Result<(), TestCaseError> {
    let hello = auth.check_hello(frame.clone(), &group(), "a", &members());
    let welcome = auth.check_welcome(frame.clone(), "b", "a", g.dialer_nonce);
    let ready = g.acceptor.check_ready(frame.clone());
    let opened = g.acceptor.clone().open(frame.clone());
    let opened_any = g.acceptor.clone().open_any(frame.clone());
    if secret {
        prop_assert!(hello.is_err() || *frame == g.hello, "a forged hello passed: {frame:?}");
        prop_assert!(welcome.is_err() || *frame == g.welcome, "a forged welcome passed: {frame:?}");
        prop_assert!(ready.is_err() || *frame == g.ready, "a forged ready passed: {frame:?}");
        prop_assert!(opened.is_err() || *frame == g.message, "a forged message was opened: {frame:?}");
        prop_assert!(
            opened_any.is_err() || *frame == g.message || *frame == g.keepalive,
            "a forged message or keepalive was opened: {frame:?}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_bytes_never_panic_and_never_authenticate(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        n1 in any::<Nonce>(), n2 in any::<Nonce>(), body in arb_message(),
    ) {
        for secret in [true, false] {
            let auth = Auth::new(secret.then(|| SECRET.to_vec()));
            let g = genuine(&auth, n1, n2, body.clone());
            if let Ok(frame) = wire::decode(&bytes) {
                every_check(&auth, &g, &frame, secret)?;
            }
        }
    }

    #[test]
    fn arbitrary_frames_round_trip_never_panic_and_never_authenticate(
        frame in arb_frame(), n1 in any::<Nonce>(), n2 in any::<Nonce>(), body in arb_message(),
    ) {
        let bytes = wire::encode(&frame);
        prop_assert_eq!(wire::decode(&bytes), Ok(frame.clone()));
        for secret in [true, false] {
            let auth = Auth::new(secret.then(|| SECRET.to_vec()));
            let g = genuine(&auth, n1, n2, body.clone());
            every_check(&auth, &g, &frame, secret)?;
        }
    }

    #[test]
    fn mutated_genuine_frames_never_authenticate_with_a_secret(
        which in 0usize..5,
        mutations in prop::collection::vec(arb_mutation(), 1..6),
        n1 in any::<Nonce>(), n2 in any::<Nonce>(), body in arb_message(),
    ) {
        let auth = Auth::new(Some(SECRET.to_vec()));
        let g = genuine(&auth, n1, n2, body);
        // Sanity: the genuine frames pass their own checks.
        prop_assert!(auth.check_hello(g.hello.clone(), &group(), "a", &members()).is_ok());
        prop_assert!(auth.check_welcome(g.welcome.clone(), "b", "a", n1).is_ok());
        prop_assert!(g.acceptor.check_ready(g.ready.clone()).is_ok());
        prop_assert!(g.acceptor.clone().open(g.message.clone()).is_ok());
        prop_assert_eq!(g.acceptor.clone().open_any(g.keepalive.clone()), Ok(None));
        let original = [&g.hello, &g.welcome, &g.ready, &g.message, &g.keepalive][which];
        let bytes = mutate(&wire::encode(original), &mutations);
        if let Ok(frame) = wire::decode(&bytes) {
            every_check(&auth, &g, &frame, true)?;
            // Without a secret the same frames must not panic anything either.
            let open = Auth::new(None);
            every_check(&open, &genuine(&open, n1, n2, Message::TimeoutNow { term: 1 }), &frame, false)?;
        }
    }

    #[test]
    fn the_codec_refuses_oversized_frames_and_never_panics(
        chunks in prop::collection::vec(
            prop_oneof![
                // a well-formed frame of garbage
                prop::collection::vec(any::<u8>(), 0..200).prop_map(|p| { let mut b = (p.len() as u32).to_be_bytes().to_vec(); b.extend(p); b }),
                // a length prefix past the cap, and a little of its "body"
                ((MAX_FRAME_BYTES as u32 + 1)..=u32::MAX, prop::collection::vec(any::<u8>(), 0..16))
                    .prop_map(|(n, p)| { let mut b = n.to_be_bytes().to_vec(); b.extend(p); b }),
                // raw bytes
                prop::collection::vec(any::<u8>(), 0..64),
            ],
            1..8,
        ),
    ) {
        let mut codec = wire::codec();
        let mut buf = BytesMut::new();
        for chunk in &chunks {
            buf.put_slice(chunk);
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(frame)) => {
                        prop_assert!(frame.len() <= MAX_FRAME_BYTES);
                        let _ = wire::decode(&frame);
                    }
                    Ok(None) => break,
                    Err(_) => {
                        // The connection would be closed here: what is buffered is never grown past the cap.
                        prop_assert!(buf.capacity() <= MAX_FRAME_BYTES + 64 * 1024, "buffered {}", buf.capacity());
                        return Ok(());
                    }
                }
            }
        }
    }
}

// ----- a running node, over TCP ----------------------------------------------------------------------

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Member "a" of a, b, c; b and c never run, so a stays at term 0 by itself (pre-vote).
fn lone_node(secret: Option<&[u8]>, cluster: &str) -> (NodeConfig, RunningNode) {
    let ids = ["a", "b", "c"];
    let addresses: BTreeMap<String, String> =
        ids.iter().map(|id| (id.to_string(), format!("127.0.0.1:{}", free_port()))).collect();
    let engine = Config::new("a", ids, Timing::default(), 7).unwrap();
    let cfg = NodeConfig::new(engine, addresses, None, None, secret.map(<[u8]>::to_vec).into_iter().collect(), cluster)
        .unwrap();
    let node = RunningNode::start(cfg.clone(), quorate::runtime::new_shared(&cfg)).unwrap();
    (cfg, node)
}

/// What one fuzzing connection does.
#[derive(Debug, Clone)]
enum Script {
    /// Raw bytes, no framing.
    Raw(Vec<u8>),
    /// Well-formed length prefixes around garbage payloads.
    Framed(Vec<Vec<u8>>),
    /// A length prefix past the cap, then some bytes.
    Oversized(u32, Vec<u8>),
    /// A length prefix, then fewer bytes than it promised, then the connection closes.
    Truncated(u32, Vec<u8>),
    /// A handshake by "b" with `key` (the right secret or not) where the hello, the ready, a
    /// keepalive or the message is mutated (`which`: 0, 1, 2, 3); the message claims term `term`.
    Handshake { right_key: bool, which: usize, mutations: Vec<Mutation>, term: u64 },
}

fn arb_script(secret: bool) -> BoxedStrategy<Script> {
    let garbage = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048).prop_map(Script::Raw),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..6).prop_map(Script::Framed),
        ((MAX_FRAME_BYTES as u32 + 1)..=u32::MAX, prop::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(n, b)| Script::Oversized(n, b)),
        (1u32..=MAX_FRAME_BYTES as u32, prop::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(n, b)| Script::Truncated(n, b)),
    ];
    if !secret {
        // Without a secret a mutated handshake may be a genuine one, which may change the term.
        return garbage.boxed();
    }
    let handshake = (
        any::<bool>(),
        0usize..4,
        prop::collection::vec(arb_mutation(), 1..5),
        prop_oneof![Just(5u64), Just(u64::MAX), any::<u64>()],
    )
        .prop_map(|(right_key, which, mutations, term)| Script::Handshake { right_key, which, mutations, term });
    prop_oneof![2 => garbage, 3 => handshake].boxed()
}

fn framed_bytes(payload: &[u8]) -> Vec<u8> {
    let mut b = (payload.len() as u32).to_be_bytes().to_vec();
    b.extend_from_slice(payload);
    b
}

async fn write_raw(stream: &mut TcpStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes).await;
    let _ = stream.flush().await;
}

type Connection = Framed<TcpStream, tokio_util::codec::LengthDelimitedCodec>;

/// Sends `frame`, mutated if `mutate_it`. False if nothing was sent or the send failed: a mutation
/// that decodes to the very same frame is no forgery, so it is not sent at all.
async fn send_maybe_mutated(framed: &mut Connection, frame: &Frame, mutate_it: bool, mutations: &[Mutation]) -> bool {
    let mut bytes = wire::encode(frame).to_vec();
    if mutate_it {
        bytes = mutate(&bytes, mutations);
        if wire::decode(&bytes).as_ref() == Ok(frame) {
            return false;
        }
    }
    framed.send(tokio_util::bytes::Bytes::from(bytes)).await.is_ok()
}

async fn play(addr: &str, script: &Script) {
    let Ok(Ok(mut stream)) = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await else {
        panic!("the node stopped accepting connections");
    };
    match script {
        Script::Raw(bytes) => write_raw(&mut stream, bytes).await,
        Script::Framed(payloads) => {
            let bytes: Vec<u8> = payloads.iter().flat_map(|p| framed_bytes(p)).collect();
            write_raw(&mut stream, &bytes).await
        }
        Script::Oversized(n, tail) => {
            let mut b = n.to_be_bytes().to_vec();
            b.extend_from_slice(tail);
            write_raw(&mut stream, &b).await
        }
        Script::Truncated(n, tail) => {
            // Always short of what the prefix promises.
            let body = &tail[..tail.len().min(*n as usize - 1)];
            let mut b = n.to_be_bytes().to_vec();
            b.extend_from_slice(body);
            write_raw(&mut stream, &b).await
        }
        Script::Handshake { right_key, which, mutations, term } => {
            let key: &[u8] = if *right_key { SECRET } else { b"not-the-secret-at-all" };
            let auth = Auth::new(Some(key.to_vec()));
            let mut framed = Framed::new(stream, wire::codec());
            let nonce = wire::fresh_nonce();
            let hello = auth.hello(&group(), "b", "a", nonce);
            if !send_maybe_mutated(&mut framed, &hello, *which == 0, mutations).await {
                return;
            }
            let Ok(Some(Ok(bytes))) = tokio::time::timeout(Duration::from_secs(5), framed.next()).await else {
                return; // refused: closed
            };
            let Ok(welcome) = wire::decode(&bytes) else { return };
            let Ok(theirs) = auth.check_welcome(welcome, "b", "a", nonce) else { return };
            let mut session = auth.session("b", "a", nonce, theirs);
            if !send_maybe_mutated(&mut framed, &session.ready(), *which == 1, mutations).await {
                return;
            }
            if *which == 2 && !send_maybe_mutated(&mut framed, &session.keepalive(), true, mutations).await {
                return;
            }
            let message = session.seal(Message::Heartbeat { term: *term, seq: 1 });
            if !send_maybe_mutated(&mut framed, &message, *which == 3, mutations).await {
                return;
            }
            // Something forged was sent: the node closes this connection, soon.
            let closed = tokio::time::timeout(Duration::from_secs(5), framed.next()).await;
            assert!(
                matches!(closed, Ok(None) | Ok(Some(Err(_)))),
                "a forged frame left the connection open: {script:?}"
            );
        }
    }
}

/// A genuine handshake still completes: the node's acceptor is alive and well.
async fn genuine_handshake_works(addr: &str, secret: Option<&[u8]>, cluster: &str) -> bool {
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut framed = Framed::new(stream, wire::codec());
    let auth = Auth::new(secret.map(<[u8]>::to_vec));
    let nonce = wire::fresh_nonce();
    let g = Group { cluster: cluster.into(), algorithm: "raft".into() };
    framed.send(wire::encode(&auth.hello(&g, "b", "a", nonce))).await.unwrap();
    let Ok(Some(Ok(bytes))) = tokio::time::timeout(Duration::from_secs(5), framed.next()).await else { return false };
    let Ok(welcome) = wire::decode(&bytes) else { return false };
    auth.check_welcome(welcome, "b", "a", nonce).is_ok()
}

fn fuzz_a_running_node(secret: Option<&[u8]>, cluster: &str, default_cases: u32) {
    let (cfg, node) = lone_node(secret, cluster);
    let addr = cfg.bind().to_string();
    let until = Instant::now() + Duration::from_secs(30);
    while node.shared.read().role.is_none() {
        assert!(Instant::now() < until, "the node's engine task never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut runner = TestRunner::new(ProptestConfig {
        cases: cases(default_cases, 10),
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let played = std::cell::Cell::new(0u64);
    runner
        .run(&arb_script(secret.is_some()), |script| {
            rt.block_on(play(&addr, &script));
            played.set(played.get() + 1);
            let s = node.shared.read().clone();
            prop_assert_eq!(s.term, 0, "the term changed after {:?}", script);
            prop_assert_eq!(s.voted_for.clone(), None, "a vote was cast after {:?}", script);
            prop_assert!(
                s.role.is_some() && s.health == Health::Ok,
                "the node stopped after {:?}: {:?}",
                script,
                s.health
            );
            prop_assert!(node.shared.failure().is_none(), "the engine task died after {:?}", script);
            Ok(())
        })
        .unwrap();
    // Let the last connections' refusals land, then check the node once more.
    std::thread::sleep(Duration::from_millis(300));
    let s = node.shared.read().clone();
    assert_eq!((s.term, s.voted_for.clone()), (0, None), "term and vote unchanged");
    assert!(
        node.shared.failure().is_none() && node.shared.is_running(),
        "the node still runs: {:?}",
        node.shared.failure()
    );
    assert!(rt.block_on(genuine_handshake_works(&addr, secret, cluster)), "a genuine peer still gets in");
    let refused: u64 = node.shared.counters.rejected_by_reason().values().sum();
    assert!(refused > 0, "refusals are counted");
    eprintln!(
        "fuzzed node ({}): {} connections in {:.1} s, refused by reason {:?}",
        if secret.is_some() { "secret" } else { "no secret" },
        played.get(),
        started.elapsed().as_secs_f64(),
        node.shared.counters.rejected_by_reason()
    );
}

#[test]
fn a_node_with_a_secret_survives_garbage_and_forged_handshakes_over_tcp() {
    fuzz_a_running_node(Some(SECRET), "fuzz", 150);
}

#[test]
fn a_node_without_a_secret_survives_garbage_over_tcp() {
    fuzz_a_running_node(None, "fuzz", 150);
}

/// Found by the flood part of the attack: the acceptor's 64 handshake slots are shared by every
/// source, and a connection that never says Hello keeps its slot for the whole handshake timeout
/// (2 s). One host that keeps 64 idle connections open (32 new ones a second) therefore locks
/// every member out of this node: a peer that restarts or reconnects is refused
/// (`too_many_connections`) for as long as the flood lasts. No secret helps: it is checked
/// only after a slot is taken.
#[test]
fn idle_connections_from_one_host_do_not_lock_a_member_out() {
    let (cfg, node) = lone_node(Some(SECRET), "fuzz");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let got_in = rt.block_on(async {
        let target: std::net::SocketAddr = cfg.bind().parse().unwrap();
        let mut idle = Vec::new();
        for _ in 0..100 {
            // The flood comes from another loopback address than the members' 127.0.0.1.
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            idle.push(socket.connect(target).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        genuine_handshake_works(cfg.bind(), Some(SECRET), "fuzz").await
    });
    let refused = node.shared.counters.rejected_by_reason().get("too_many_connections").copied().unwrap_or(0);
    assert!(got_in, "a member with the secret was refused while one other host held idle connections ({refused} refused as too many)");
}
