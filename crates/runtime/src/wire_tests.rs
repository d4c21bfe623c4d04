//! Unit tests of wire.rs: frames, the handshake and its MACs, secret rotation.

use super::*;

fn group(cluster: &str, algorithm: &str) -> Group {
    Group { cluster: cluster.into(), algorithm: algorithm.into() }
}

fn members() -> Vec<NodeId> {
    vec!["a".into(), "b".into(), "c".into()]
}

fn handshake(dialer_auth: &Auth, acceptor_auth: &Auth) -> Result<(Session, Session), Rejection> {
    let n1 = fresh_nonce();
    let hello = decode(&encode(&dialer_auth.hello(&group("c1", "raft"), "a", "b", n1)))?;
    let (from, dialer_nonce, keyed) = acceptor_auth.check_hello(hello, &group("c1", "raft"), "b", &members())?;
    let n2 = fresh_nonce();
    let welcome = keyed.welcome(&from, "b", dialer_nonce, n2);
    let acceptor_nonce = dialer_auth.check_welcome(welcome, "a", "b", n1)?;
    Ok((dialer_auth.session("a", "b", n1, acceptor_nonce), keyed.session(&from, "b", dialer_nonce, n2)))
}

fn secrets(keys: &[&[u8]]) -> Auth {
    Auth::rotating(keys.iter().map(|k| k.to_vec()).collect())
}

#[test]
fn a_rotation_member_by_member_keeps_every_pair_talking_in_both_directions() {
    let (old, new): (&[u8], &[u8]) = (b"old-secret-0123456789", b"new-secret-0123456789");
    // Each member goes [old] -> [old, new] -> [new, old] -> [new], one member at a time; at
    // every moment every pair must still complete a handshake and exchange a message.
    let stages = [secrets(&[old]), secrets(&[old, new]), secrets(&[new, old]), secrets(&[new])];
    let mut at = [0usize; 3];
    for step in 0..(3 * (stages.len() - 1)) {
        at[step % 3] += 1;
        at.sort_unstable_by(|x, y| y.cmp(x)); // keep the invariant: members differ by one stage at most
        for (i, &a) in at.iter().enumerate() {
            for (j, &b) in at.iter().enumerate() {
                if i == j {
                    continue;
                }
                let (mut sealing, mut opening) =
                    handshake(&stages[a], &stages[b]).unwrap_or_else(|e| panic!("stage {a} dialing stage {b}: {e}"));
                assert_eq!(opening.open(sealing.seal(hb(3))), Ok(hb(3)));
            }
        }
    }
    assert_eq!(at, [3, 3, 3], "everyone finished the rotation");
}

#[test]
fn a_secret_the_acceptor_does_not_hold_is_refused_whatever_else_it_holds() {
    let outsider = secrets(&[b"someone-elses-secret-00"]);
    let member = secrets(&[b"new-secret-0123456789", b"old-secret-0123456789"]);
    assert_eq!(handshake(&outsider, &member).err(), Some(Rejection::BadMac));
}

fn hb(term: u64) -> Message {
    Message::Heartbeat { term, seq: 1 }
}

#[test]
fn authenticated_frames_pass_and_replays_fail() {
    let auth = Auth::new(Some(b"0123456789abcdef".to_vec()));
    let (mut tx, mut rx) = handshake(&auth, &auth).unwrap();
    let f1 = tx.seal(hb(1));
    let f2 = tx.seal(hb(2));
    assert_eq!(rx.open(decode(&encode(&f1)).unwrap()), Ok(hb(1)));
    assert_eq!(rx.open(f2.clone()), Ok(hb(2)));
    assert!(matches!(rx.open(f1), Err(Rejection::Replay { .. })));
    // The same frame on another connection fails too: its key differs.
    let (_, mut other) = handshake(&auth, &auth).unwrap();
    assert_eq!(other.open(f2), Err(Rejection::BadMac));
}

#[test]
fn keepalives_are_authenticated_and_ordered_like_messages() {
    let auth = Auth::new(Some(b"0123456789abcdef".to_vec()));
    let (mut tx, mut rx) = handshake(&auth, &auth).unwrap();
    let k1 = tx.keepalive();
    let m2 = tx.seal(hb(2));
    assert_eq!(rx.open_any(k1.clone()), Ok(None));
    assert_eq!(rx.open_any(m2), Ok(Some(hb(2))));
    assert!(matches!(rx.open_any(k1), Err(Rejection::Replay { .. })));
    let Frame::Keepalive { seq, .. } = tx.keepalive() else { unreachable!() };
    assert_eq!(rx.open_any(Frame::Keepalive { seq, mac: vec![0; 32] }), Err(Rejection::BadMac));
}

#[test]
fn every_reason_is_listed() {
    let all = [
        Rejection::Malformed,
        Rejection::Version { ours: 1, theirs: 2 },
        Rejection::Cluster { ours: "a".into(), theirs: "b".into() },
        Rejection::Algorithm { ours: "a".into(), theirs: "b".into() },
        Rejection::RefusedByPeer(String::new()),
        Rejection::ImplausibleTerm { ours: 0, theirs: 1 },
        Rejection::NotReady,
        Rejection::TooManyConnections(1),
        Rejection::UnknownPeer(String::new()),
        Rejection::WrongNode(String::new()),
        Rejection::BadMac,
        Rejection::Replay { got: 1, last: 1 },
        Rejection::Unexpected,
    ];
    let names: Vec<_> = all.iter().map(Rejection::reason).collect();
    assert_eq!(names, REJECTION_REASONS);
}

#[test]
fn a_replayed_hello_cannot_prove_the_session_key() {
    let auth = Auth::new(Some(b"0123456789abcdef".to_vec()));
    let g = group("c1", "raft");
    let hello = auth.hello(&g, "a", "b", fresh_nonce());
    // The real dialer, and an attacker replaying its hello: the acceptor answers each with a
    // fresh nonce, so the attacker's session key is one it cannot derive without the secret.
    let (_, dialer_nonce, _) = auth.check_hello(hello.clone(), &g, "b", &members()).unwrap();
    let acceptor_nonce = fresh_nonce();
    let acceptor = auth.session("a", "b", dialer_nonce, acceptor_nonce);
    let attacker = Auth::new(Some(b"not-the-secret-at-all".to_vec())).session("a", "b", dialer_nonce, acceptor_nonce);
    assert_eq!(acceptor.check_ready(attacker.ready()), Err(Rejection::BadMac));
    let dialer = auth.session("a", "b", dialer_nonce, acceptor_nonce);
    assert_eq!(acceptor.check_ready(dialer.ready()), Ok(()));
    let stale = auth.session("a", "b", dialer_nonce, fresh_nonce());
    assert_eq!(acceptor.check_ready(stale.ready()), Err(Rejection::BadMac), "a ready from another handshake");
}

#[test]
fn a_tampered_or_forged_frame_fails_authentication() {
    let auth = Auth::new(Some(b"0123456789abcdef".to_vec()));
    let (mut tx, mut rx) = handshake(&auth, &auth).unwrap();
    let Frame::Message { seq, mac, .. } = tx.seal(hb(1)) else { unreachable!() };
    assert_eq!(rx.open(Frame::Message { seq, body: hb(99), mac }), Err(Rejection::BadMac));
    let forger = Auth::new(Some(b"not-the-secret-at-all".to_vec()));
    assert_eq!(handshake(&forger, &auth).err(), Some(Rejection::BadMac));
    assert_eq!(handshake(&Auth::new(None), &auth).err(), Some(Rejection::BadMac));
}

#[test]
fn handshakes_check_version_cluster_algorithm_and_membership() {
    let auth = Auth::new(None);
    let g = group("c1", "raft");
    let ok = auth.hello(&g, "a", "b", fresh_nonce());
    assert!(auth.check_hello(ok, &g, "b", &members()).is_ok());
    let other_cluster = auth.hello(&group("c2", "raft"), "a", "b", fresh_nonce());
    let err = auth.check_hello(other_cluster, &g, "b", &members()).unwrap_err();
    assert_eq!(err, Rejection::Cluster { ours: "c1".into(), theirs: "c2".into() });
    assert!(err.tell_peer() && err.to_string().contains("\"c1\"") && err.to_string().contains("\"c2\""));
    let other_algorithm = auth.hello(&group("c1", "bully"), "a", "b", fresh_nonce());
    let err = auth.check_hello(other_algorithm, &g, "b", &members()).unwrap_err();
    assert_eq!(err.to_string(), "the dialing node runs algorithm \"bully\", the accepting node \"raft\"");
    let stranger = auth.hello(&g, "z", "b", fresh_nonce());
    assert_eq!(auth.check_hello(stranger, &g, "b", &members()).err(), Some(Rejection::UnknownPeer("z".into())));
    let misaddressed = auth.hello(&g, "a", "c", fresh_nonce());
    assert_eq!(auth.check_hello(misaddressed, &g, "b", &members()).err(), Some(Rejection::WrongNode("c".into())));
    let Frame::Hello { cluster, algorithm, from, to, nonce, mac, .. } = auth.hello(&g, "a", "b", fresh_nonce()) else {
        unreachable!()
    };
    let future = Frame::Hello { version: 9, cluster, algorithm, from, to, nonce, mac };
    let err = auth.check_hello(future, &g, "b", &members()).unwrap_err();
    assert_eq!(err, Rejection::Version { ours: PROTOCOL_VERSION, theirs: 9 });
    let refused = Frame::Refused { reason: err.to_string() };
    assert!(
        matches!(auth.check_welcome(refused, "a", "b", fresh_nonce()), Err(Rejection::RefusedByPeer(r)) if r.contains("version 9"))
    );
    assert!(!Rejection::BadMac.tell_peer());
    assert_eq!(decode(b"\xff\xff\xff"), Err(Rejection::Malformed));
}
