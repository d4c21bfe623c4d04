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
#[path = "wire_tests.rs"]
mod tests;
