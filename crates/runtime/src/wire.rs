//! The wire: length-prefixed postcard frames with a hard size cap checked before any allocation
//! (tokio-util's length-delimited codec), a versioned handshake carrying the cluster name and both
//! node ids, and, when the cluster has a secret, HMAC-SHA256 on every frame.
//!
//! A connection carries traffic one way: the dialer sends `Hello` (protocol version, cluster name,
//! algorithm, both ids), the acceptor answers `Welcome`, then the dialer sends `Message` frames. A
//! peer of another version, cluster or algorithm is answered `Refused`, naming both sides, so the
//! operator of either node reads what is wrong; the frame is only informative and changes nothing. Authentication: `Hello` and `Welcome` are MACed with the
//! secret and bind both nonces, so an old `Welcome` cannot be replayed; messages are MACed with a
//! per-connection key derived from both nonces and carry a sequence number that must strictly
//! increase, so a frame replayed on the same connection or onto another one fails.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio_util::bytes::Bytes;
use tokio_util::codec::LengthDelimitedCodec;

use quorate_engine::{Message, NodeId};

pub const PROTOCOL_VERSION: u16 = 2;
/// No frame is larger: an election message is a few dozen bytes.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
pub const NONCE_BYTES: usize = 16;
pub type Nonce = [u8; NONCE_BYTES];

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    Hello {
        version: u16,
        cluster: String,
        algorithm: String,
        from: NodeId,
        to: NodeId,
        nonce: Nonce,
        mac: Vec<u8>,
    },
    Welcome {
        nonce: Nonce,
        mac: Vec<u8>,
    },
    /// Why an acceptor refused a `Hello` of another version, cluster or algorithm.
    Refused {
        reason: String,
    },
    /// The dialer's first frame after `Welcome`: MACed with the session key, which only a dialer
    /// that knows the secret and received this `Welcome` can derive. A replayed `Hello` cannot
    /// follow up with it, so its connection is closed at the handshake timeout.
    Ready {
        mac: Vec<u8>,
    },
    /// Sent by a dialer after a while of silence, so the acceptor can tell a live idle connection
    /// from an abandoned one (which it closes). Sequenced and MACed like a message.
    Keepalive {
        seq: u64,
        mac: Vec<u8>,
    },
    Message {
        seq: u64,
        body: Message,
        mac: Vec<u8>,
    },
}

pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder().length_field_type::<u32>().max_frame_length(MAX_FRAME_BYTES).new_codec()
}

pub fn encode(frame: &Frame) -> Bytes {
    Bytes::from(postcard::to_allocvec(frame).expect("frames always encode"))
}

pub fn decode(bytes: &[u8]) -> Result<Frame, Rejection> {
    postcard::from_bytes(bytes).map_err(|_| Rejection::Malformed)
}

pub fn fresh_nonce() -> Nonce {
    let mut n = [0u8; NONCE_BYTES];
    getrandom::fill(&mut n).expect("the OS random source is available");
    n
}

/// Why a peer's frame or handshake was refused (counted as `messages_rejected`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("malformed frame")]
    Malformed,
    #[error("the dialing node speaks protocol version {theirs}, the accepting node {ours}")]
    Version { ours: u16, theirs: u16 },
    #[error("the dialing node is of cluster {theirs:?}, the accepting node of cluster {ours:?}")]
    Cluster { ours: String, theirs: String },
    #[error("the dialing node runs algorithm {theirs:?}, the accepting node {ours:?}")]
    Algorithm { ours: String, theirs: String },
    #[error("the peer refused the handshake: {0}")]
    RefusedByPeer(String),
    #[error("no proof of the session key after the handshake: a replayed or abandoned hello")]
    NotReady,
    #[error("too many connections ({0}); refusing more until some close")]
    TooManyConnections(usize),
    #[error("term {theirs} is implausibly far ahead of ours ({ours})")]
    ImplausibleTerm { ours: u64, theirs: u64 },
    #[error("{0:?} is not a member")]
    UnknownPeer(NodeId),
    #[error("addressed to {0:?}, not to this node")]
    WrongNode(NodeId),
    #[error("authentication failed")]
    BadMac,
    #[error("sequence number {got} after {last}: replayed or reordered")]
    Replay { got: u64, last: u64 },
    #[error("unexpected frame")]
    Unexpected,
}

/// Every reason name `Rejection::reason` gives, for metrics that list each one, seen or not.
pub const REJECTION_REASONS: [&str; 13] = [
    "malformed",
    "version",
    "cluster",
    "algorithm",
    "refused_by_peer",
    "implausible_term",
    "not_ready",
    "too_many_connections",
    "unknown_peer",
    "wrong_node",
    "bad_mac",
    "replay",
    "unexpected",
];

impl Rejection {
    /// The reason's name, as `status()` and the metrics count it (one of `REJECTION_REASONS`).
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::Version { .. } => "version",
            Rejection::Cluster { .. } => "cluster",
            Rejection::Algorithm { .. } => "algorithm",
            Rejection::RefusedByPeer(_) => "refused_by_peer",
            Rejection::ImplausibleTerm { .. } => "implausible_term",
            Rejection::NotReady => "not_ready",
            Rejection::TooManyConnections(_) => "too_many_connections",
            Rejection::UnknownPeer(_) => "unknown_peer",
            Rejection::WrongNode(_) => "wrong_node",
            Rejection::BadMac => "bad_mac",
            Rejection::Replay { .. } => "replay",
            Rejection::Unexpected => "unexpected",
        }
    }
}

/// What a peer must share with us to be let in: the cluster's name and the election algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub cluster: String,
    pub algorithm: String,
}

impl Rejection {
    /// A refusal worth telling the peer about: it speaks another version, cluster or algorithm,
    /// which its operator must fix. (Authentication failures tell a forger nothing.)
    pub fn tell_peer(&self) -> bool {
        matches!(self, Rejection::Version { .. } | Rejection::Cluster { .. } | Rejection::Algorithm { .. })
    }
}

/// The cluster's shared secrets, if it has any. Without a secret every MAC is empty and accepted:
/// frames are then checked only for size, version, cluster and membership.
///
/// With several (rotation without downtime), the first signs what this node starts and every one
/// is accepted: an acceptor answers a dialer with the key the dialer's `Hello` was signed with, so
/// each connection uses its dialer's first secret. Rotate by giving every member `[old, new]`,
/// then `[new, old]`, then `[new]`, one member at a time.
#[derive(Clone)]
pub struct Auth {
    secrets: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Auth({} secrets)", self.secrets.len())
    }
}

/// An HMAC over `parts`, each length-prefixed so that ("ab", "c") and ("a", "bc") differ.
fn keyed(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        mac.update(&(p.len() as u64).to_le_bytes());
        mac.update(p);
    }
    mac
}

fn mac_over(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    keyed(key, parts).finalize().into_bytes().to_vec()
}

/// Constant-time comparison, as `verify_slice` does.
fn verify(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    keyed(key, parts).verify_slice(tag).is_ok()
}

impl Auth {
    pub fn new(secret: Option<Vec<u8>>) -> Auth {
        Auth::rotating(secret.into_iter().collect())
    }

    /// `secrets[0]` signs, every one is accepted (see [`Auth`]); empty: no authentication.
    pub fn rotating(secrets: Vec<Vec<u8>>) -> Auth {
        Auth { secrets }
    }

    /// The key this node signs with.
    fn signing(&self) -> Option<&Vec<u8>> {
        self.secrets.first()
    }

    pub fn hello(&self, group: &Group, from: &str, to: &str, nonce: Nonce) -> Frame {
        let v = PROTOCOL_VERSION.to_le_bytes();
        let mac = self.signing().map_or_else(Vec::new, |k| {
            let (c, a) = (group.cluster.as_bytes(), group.algorithm.as_bytes());
            mac_over(k, &[b"hello", &v, c, a, from.as_bytes(), to.as_bytes(), &nonce])
        });
        Frame::Hello {
            version: PROTOCOL_VERSION,
            cluster: group.cluster.clone(),
            algorithm: group.algorithm.clone(),
            from: from.into(),
            to: to.into(),
            nonce,
            mac,
        }
    }

    /// Checks a `Hello` received by `me` of `group`; returns the dialer's id and nonce, and the
    /// `Auth` of this connection: the one secret the `Hello` was signed with, which the acceptor's
    /// `welcome` and `session` must use.
    pub fn check_hello(
        &self,
        frame: Frame,
        group: &Group,
        me: &str,
        members: &[NodeId],
    ) -> Result<(NodeId, Nonce, Auth), Rejection> {
        let Frame::Hello { version, cluster, algorithm, from, to, nonce, mac } = frame else {
            return Err(Rejection::Unexpected);
        };
        if version != PROTOCOL_VERSION {
            return Err(Rejection::Version { ours: PROTOCOL_VERSION, theirs: version });
        }
        if cluster != group.cluster {
            return Err(Rejection::Cluster { ours: group.cluster.clone(), theirs: cluster });
        }
        if algorithm != group.algorithm {
            return Err(Rejection::Algorithm { ours: group.algorithm.clone(), theirs: algorithm });
        }
        if to != me {
            return Err(Rejection::WrongNode(to));
        }
        if from == me || !members.contains(&from) {
            return Err(Rejection::UnknownPeer(from));
        }
        if self.secrets.is_empty() {
            return Ok((from, nonce, self.clone()));
        }
        let v = version.to_le_bytes();
        let (c, a) = (cluster.as_bytes(), algorithm.as_bytes());
        let parts: [&[u8]; 7] = [b"hello", &v, c, a, from.as_bytes(), to.as_bytes(), &nonce];
        match self.secrets.iter().find(|k| verify(k, &parts, &mac)) {
            Some(k) => Ok((from, nonce, Auth { secrets: vec![k.clone()] })),
            None => Err(Rejection::BadMac),
        }
    }

    pub fn welcome(&self, dialer: &str, acceptor: &str, dialer_nonce: Nonce, nonce: Nonce) -> Frame {
        let mac = self.signing().map_or_else(Vec::new, |k| {
            mac_over(k, &[b"welcome", dialer.as_bytes(), acceptor.as_bytes(), &dialer_nonce, &nonce])
        });
        Frame::Welcome { nonce, mac }
    }

    /// Checks the `Welcome` a dialer received; returns the acceptor's nonce.
    pub fn check_welcome(
        &self,
        frame: Frame,
        dialer: &str,
        acceptor: &str,
        dialer_nonce: Nonce,
    ) -> Result<Nonce, Rejection> {
        let (nonce, mac) = match frame {
            Frame::Welcome { nonce, mac } => (nonce, mac),
            Frame::Refused { reason } => return Err(Rejection::RefusedByPeer(reason)),
            _ => return Err(Rejection::Unexpected),
        };
        if let Some(k) = self.signing() {
            if !verify(k, &[b"welcome", dialer.as_bytes(), acceptor.as_bytes(), &dialer_nonce, &nonce], &mac) {
                return Err(Rejection::BadMac);
            }
        }
        Ok(nonce)
    }

    /// The per-connection state both ends derive once the handshake is done.
    pub fn session(&self, dialer: &str, acceptor: &str, dialer_nonce: Nonce, acceptor_nonce: Nonce) -> Session {
        let key = self.signing().map(|k| {
            mac_over(k, &[b"session", dialer.as_bytes(), acceptor.as_bytes(), &dialer_nonce, &acceptor_nonce])
        });
        Session { key, last_seq: 0 }
    }
}

/// One direction of one connection: seals outgoing messages or opens incoming ones.
#[derive(Debug, Clone)]
pub struct Session {
    key: Option<Vec<u8>>,
    last_seq: u64,
}

impl Session {
    /// The dialer's proof that it holds this session's key (see `Frame::Ready`).
    pub fn ready(&self) -> Frame {
        Frame::Ready { mac: self.key.as_ref().map_or_else(Vec::new, |k| mac_over(k, &[b"ready"])) }
    }

    /// Checks the dialer's `Ready`: the handshake is fresh, not a replayed `Hello`.
    pub fn check_ready(&self, frame: Frame) -> Result<(), Rejection> {
        let Frame::Ready { mac } = frame else { return Err(Rejection::Unexpected) };
        match &self.key {
            Some(k) if !verify(k, &[b"ready"], &mac) => Err(Rejection::BadMac),
            _ => Ok(()),
        }
    }

    /// A keepalive frame: it takes the next sequence number, so it cannot be replayed either.
    pub fn keepalive(&mut self) -> Frame {
        self.last_seq += 1;
        let seq = self.last_seq;
        let mac = self.key.as_ref().map_or_else(Vec::new, |k| mac_over(k, &[b"keepalive", &seq.to_le_bytes()]));
        Frame::Keepalive { seq, mac }
    }

    /// Opens a message or a keepalive (`Ok(None)`), with the same authentication and ordering.
    pub fn open_any(&mut self, frame: Frame) -> Result<Option<Message>, Rejection> {
        let Frame::Keepalive { seq, mac } = frame else { return self.open(frame).map(Some) };
        if let Some(k) = &self.key {
            if !verify(k, &[b"keepalive", &seq.to_le_bytes()], &mac) {
                return Err(Rejection::BadMac);
            }
        }
        if seq <= self.last_seq {
            return Err(Rejection::Replay { got: seq, last: self.last_seq });
        }
        self.last_seq = seq;
        Ok(None)
    }

    pub fn seal(&mut self, body: Message) -> Frame {
        self.last_seq += 1;
        let seq = self.last_seq;
        let mac = self.key.as_ref().map_or_else(Vec::new, |k| {
            let bytes = postcard::to_allocvec(&body).expect("messages always encode");
            mac_over(k, &[&seq.to_le_bytes(), &bytes])
        });
        Frame::Message { seq, body, mac }
    }

    pub fn open(&mut self, frame: Frame) -> Result<Message, Rejection> {
        let Frame::Message { seq, body, mac } = frame else { return Err(Rejection::Unexpected) };
        if let Some(k) = &self.key {
            let bytes = postcard::to_allocvec(&body).expect("messages always encode");
            if !verify(k, &[&seq.to_le_bytes(), &bytes], &mac) {
                return Err(Rejection::BadMac);
            }
        }
        if seq <= self.last_seq {
            return Err(Rejection::Replay { got: seq, last: self.last_seq });
        }
        self.last_seq = seq;
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
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
                    let (mut sealing, mut opening) = handshake(&stages[a], &stages[b])
                        .unwrap_or_else(|e| panic!("stage {a} dialing stage {b}: {e}"));
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
        let attacker =
            Auth::new(Some(b"not-the-secret-at-all".to_vec())).session("a", "b", dialer_nonce, acceptor_nonce);
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
        let Frame::Hello { cluster, algorithm, from, to, nonce, mac, .. } = auth.hello(&g, "a", "b", fresh_nonce())
        else {
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
}
