//! The TCP transport: an acceptor that serves inbound connections (handshake, then authenticated
//! messages into the node's inbox) and one dialer per peer that keeps an outbound connection and
//! writes the peer's outbox to it. Whatever fails a check is counted and never reaches the engine.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::codec::Framed;

use super::admission::{Admission, Admitted, MAX_HANDSHAKING, MAX_HANDSHAKING_PER_SOURCE};
use super::config::NodeConfig;
use super::shared::Shared;
use super::wire::{self, Auth, Group, Rejection};
use quorate_engine::{Message, NodeId};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// A dialer with nothing to send for this long sends a keepalive.
const KEEPALIVE: Duration = Duration::from_secs(1);
/// An inbound connection silent for this long (no message, no keepalive) is abandoned: closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
const BACKOFF_MIN: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

type Connection = Framed<TcpStream, tokio_util::codec::LengthDelimitedCodec>;

pub async fn accept_loop(
    listener: TcpListener,
    cfg: NodeConfig,
    auth: Auth,
    inbox: mpsc::Sender<(NodeId, Message)>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    // The members' own addresses: connections from them are shed last.
    let member_sources = cfg.addresses.values().filter_map(|a| a.parse::<SocketAddr>().ok()).map(|a| a.ip());
    let admission = Mutex::new(Admission::new(member_sources));
    let acceptor = Arc::new(Acceptor { cfg, auth, inbox, shared, inbound: Mutex::new(Inbound::default()), admission });
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, from)) => {
                    // The table of handshakes is bounded, so half-open or abandoned handshakes
                    // cannot pile up; a full table sheds an old one rather than refuse this one.
                    let (slot, shed) = acceptor.admission.lock().expect("admission lock").admit(from.ip());
                    if let Some(ip) = shed {
                        let limit = if ip == from.ip() { MAX_HANDSHAKING_PER_SOURCE } else { MAX_HANDSHAKING };
                        acceptor.refuse(&SocketAddr::new(ip, 0), Rejection::TooManyConnections(limit));
                    }
                    let slot = HandshakeSlot { acceptor: acceptor.clone(), admitted: slot };
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(acceptor.clone().serve(stream, from, slot, shutdown.clone()));
                }
                Err(e) => {
                    log::warn!("{}: accept failed: {e}", acceptor.cfg.engine.id);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Authenticated connections kept per peer: its dialer's, and one more while it reconnects. A
/// newer one closes the oldest.
const MAX_PER_PEER: usize = 2;

/// What every inbound connection of one node shares.
struct Acceptor {
    cfg: NodeConfig,
    auth: Auth,
    inbox: mpsc::Sender<(NodeId, Message)>,
    shared: Arc<Shared>,
    inbound: Mutex<Inbound>,
    /// The connections in their handshake.
    admission: Mutex<Admission>,
}

/// A connection's place in the handshake table, given back however the handshake ends.
struct HandshakeSlot {
    acceptor: Arc<Acceptor>,
    admitted: Admitted,
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        self.acceptor.admission.lock().expect("admission lock").finish(self.admitted.id);
    }
}

/// The authenticated inbound connections, per peer, oldest first, each with the means to close it.
#[derive(Default)]
struct Inbound {
    next_id: u64,
    per_peer: HashMap<NodeId, VecDeque<(u64, oneshot::Sender<()>)>>,
}

/// Removes a connection from `Inbound` however its task ends.
struct Registered<'a> {
    acceptor: &'a Acceptor,
    peer: NodeId,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let mut inbound = self.acceptor.inbound.lock().expect("inbound lock");
        if let Some(list) = inbound.per_peer.get_mut(&self.peer) {
            list.retain(|(id, _)| *id != self.id);
        }
    }
}

impl Acceptor {
    fn refuse(&self, from: &SocketAddr, why: Rejection) {
        self.shared.refuse(&self.cfg.engine.id, &from.ip().to_string(), &why);
    }

    /// One inbound connection: handshake, then authenticated messages into the inbox. Anything
    /// that fails a check is counted and ends the connection; it never reaches the engine.
    async fn serve(
        self: Arc<Self>,
        stream: TcpStream,
        from: SocketAddr,
        mut slot: HandshakeSlot,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut framed = Framed::new(stream, wire::codec());
        let handshake = tokio::select! {
            _ = &mut slot.admitted.shed => return, // made room for a newer one (counted there)
            done = self.handshake(&mut framed) => done,
        };
        let (peer, mut session) = match handshake {
            Ok(Some(done)) => done,
            Ok(None) => return, // closed or timed out before a hello: nothing to count
            Err(why) => return self.refuse(&from, why),
        };
        drop(slot);
        let (registered, mut evicted) = self.register(&peer);
        loop {
            let frame = tokio::select! {
                _ = shutdown.changed() => return,
                _ = &mut evicted => return, // a newer connection of this peer replaced it
                frame = tokio::time::timeout(IDLE_TIMEOUT, framed.next()) => match frame {
                    Ok(frame) => frame,
                    Err(_) => return, // abandoned: its dialer would have sent a keepalive
                },
            };
            let message = match frame {
                None => return,
                Some(Err(_)) => return self.refuse(&from, Rejection::Malformed),
                Some(Ok(bytes)) => match wire::decode(&bytes).and_then(|f| session.open_any(f)) {
                    Ok(Some(m)) => m,
                    Ok(None) => continue, // a keepalive
                    Err(why) => return self.refuse(&from, why),
                },
            };
            if self.inbox.try_send((registered.peer.clone(), message)).is_err() {
                self.shared.bump(&self.shared.counters.messages_dropped);
            }
        }
    }

    /// Hello, Welcome, then the dialer's Ready, each within the handshake timeout: Ok(None) if
    /// the connection ends first without a hello.
    async fn handshake(&self, framed: &mut Connection) -> Result<Option<(NodeId, wire::Session)>, Rejection> {
        let me = self.cfg.engine.id.as_str();
        let hello = match tokio::time::timeout(HANDSHAKE_TIMEOUT, framed.next()).await {
            Ok(Some(Ok(bytes))) => wire::decode(&bytes)?,
            Ok(Some(Err(_))) => return Err(Rejection::Malformed), // oversized or broken framing
            _ => return Ok(None),
        };
        let checked = self.auth.check_hello(hello, &self.cfg.group(), me, &self.cfg.engine.members);
        let (peer, dialer_nonce, auth) = match checked {
            Ok(ok) => ok,
            Err(why) => {
                if why.tell_peer() {
                    let _ = framed.send(wire::encode(&wire::Frame::Refused { reason: why.to_string() })).await;
                }
                return Err(why);
            }
        };
        let nonce = wire::fresh_nonce();
        if framed.send(wire::encode(&auth.welcome(&peer, me, dialer_nonce, nonce))).await.is_err() {
            return Ok(None);
        }
        let session = auth.session(&peer, me, dialer_nonce, nonce);
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, framed.next()).await {
            Ok(Some(Ok(bytes))) => session.check_ready(wire::decode(&bytes)?)?,
            _ => return Err(Rejection::NotReady),
        }
        Ok(Some((peer, session)))
    }

    fn register(&self, peer: &NodeId) -> (Registered<'_>, oneshot::Receiver<()>) {
        let (close, evicted) = oneshot::channel();
        let mut inbound = self.inbound.lock().expect("inbound lock");
        inbound.next_id += 1;
        let id = inbound.next_id;
        let list = inbound.per_peer.entry(peer.clone()).or_default();
        while list.len() >= MAX_PER_PEER {
            if let Some((_, oldest)) = list.pop_front() {
                let _ = oldest.send(());
            }
        }
        list.push_back((id, close));
        (Registered { acceptor: self, peer: peer.clone(), id }, evicted)
    }
}

pub struct Dialer {
    me: NodeId,
    peer: NodeId,
    address: String,
    group: Group,
    auth: Auth,
    shared: Arc<Shared>,
    /// Messages older than this are dropped rather than sent late after a reconnect.
    stale_after: Duration,
    seed: u64,
}

impl Dialer {
    pub fn new(cfg: &NodeConfig, peer: &NodeId, address: &str, auth: Auth, shared: Arc<Shared>, seed: u64) -> Dialer {
        Dialer {
            me: cfg.engine.id.clone(),
            peer: peer.clone(),
            address: address.to_string(),
            group: cfg.group(),
            auth,
            shared,
            stale_after: cfg.engine.timing.election_timeout.0,
            seed,
        }
    }

    /// Keeps one outbound connection to the peer, reconnecting with capped exponential backoff and
    /// jitter, and writes the peer's outbox to it.
    pub async fn run(self, mut outbox: mpsc::Receiver<(Instant, Message)>, mut shutdown: watch::Receiver<bool>) {
        let mut rng = Pcg64Mcg::seed_from_u64(self.seed);
        let mut backoff = BACKOFF_MIN;
        loop {
            let connected = tokio::select! {
                _ = shutdown.changed() => return,
                c = self.connect() => c,
            };
            match connected {
                Ok((framed, session)) => {
                    backoff = BACKOFF_MIN;
                    self.set_connected(true);
                    let ended = self.pump(framed, session, &mut outbox, &mut shutdown).await;
                    self.set_connected(false);
                    if ended {
                        return;
                    }
                }
                Err(e) => log::debug!("{} -> {}: {e}", self.me, self.peer),
            }
            // While disconnected, what queued goes stale; drop it rather than deliver it late.
            while outbox.try_recv().is_ok() {
                self.shared.bump(&self.shared.counters.messages_dropped);
            }
            let jitter = backoff.mul_f64(rng.random_range(0.0..0.5));
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(backoff + jitter) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn connect(&self) -> Result<(Connection, wire::Session), String> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.address))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let mut framed = Framed::new(stream, wire::codec());
        let nonce = wire::fresh_nonce();
        let hello = self.auth.hello(&self.group, &self.me, &self.peer, nonce);
        framed.send(wire::encode(&hello)).await.map_err(|e| format!("hello: {e}"))?;
        let welcome = match tokio::time::timeout(HANDSHAKE_TIMEOUT, framed.next()).await {
            Ok(Some(Ok(bytes))) => wire::decode(&bytes).map_err(|e| e.to_string())?,
            _ => return Err("no welcome: the peer refused the handshake".to_string()),
        };
        let their_nonce = self.auth.check_welcome(welcome, &self.me, &self.peer, nonce).map_err(|e| {
            self.shared.refuse(&self.me, &self.address, &e);
            e.to_string()
        })?;
        let session = self.auth.session(&self.me, &self.peer, nonce, their_nonce);
        framed.send(wire::encode(&session.ready())).await.map_err(|e| format!("ready: {e}"))?;
        Ok((framed, session))
    }

    /// Writes messages until the connection fails (false) or the node shuts down (true).
    async fn pump(
        &self,
        mut framed: Connection,
        mut session: wire::Session,
        outbox: &mut mpsc::Receiver<(Instant, Message)>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        loop {
            let next = tokio::select! {
                _ = shutdown.changed() => return true,
                // The peer never writes on this connection: a read ending means it closed.
                _ = framed.next() => return false,
                next = outbox.recv() => next,
                _ = tokio::time::sleep(KEEPALIVE) => {
                    if framed.send(wire::encode(&session.keepalive())).await.is_err() {
                        return false;
                    }
                    continue;
                }
            };
            let Some((queued_at, message)) = next else { return true };
            if queued_at.elapsed() > self.stale_after {
                self.shared.bump(&self.shared.counters.messages_dropped);
                continue;
            }
            let frame = session.seal(message);
            if framed.send(wire::encode(&frame)).await.is_err() {
                return false;
            }
        }
    }

    fn set_connected(&self, connected: bool) {
        self.shared.publish(|s| {
            if let Some(p) = s.peers.get_mut(&self.peer) {
                p.connected = connected;
            }
        });
    }
}
