//! The TCP transport: an acceptor that serves inbound connections (handshake, then authenticated
//! messages into the node's inbox) and one dialer per peer that keeps an outbound connection and
//! writes the peer's outbox to it. Whatever fails a check is counted and never reaches the engine.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_util::codec::Framed;

use super::log_limit::suppressed_note;
use super::node::NodeConfig;
use super::shared::Shared;
use super::wire::{self, Auth, Group, Rejection};
use crate::engine::{Message, NodeId};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
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
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, from)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve_inbound(stream, from, cfg.clone(), auth.clone(), inbox.clone(), shared.clone(), shutdown.clone()));
                }
                Err(e) => {
                    log::warn!("{}: accept failed: {e}", cfg.engine.id);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// One inbound connection: handshake, then authenticated messages into the inbox. Anything that
/// fails a check is counted and ends the connection; it never reaches the engine.
async fn serve_inbound(
    stream: TcpStream,
    from: SocketAddr,
    cfg: NodeConfig,
    auth: Auth,
    inbox: mpsc::Sender<(NodeId, Message)>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let me = cfg.engine.id.as_str();
    let reject = |why: Rejection| refused(&shared, me, &from.ip().to_string(), &why);
    let mut framed = Framed::new(stream, wire::codec());
    let hello = match tokio::time::timeout(HANDSHAKE_TIMEOUT, framed.next()).await {
        Ok(Some(Ok(bytes))) => wire::decode(&bytes),
        Ok(Some(Err(_))) => Err(Rejection::Malformed), // oversized or broken framing
        _ => return,
    };
    let (peer, dialer_nonce) = match hello.and_then(|h| auth.check_hello(h, &cfg.group(), me, &cfg.engine.members)) {
        Ok(ok) => ok,
        Err(why) => {
            if why.tell_peer() {
                let _ = framed.send(wire::encode(&wire::Frame::Refused { reason: why.to_string() })).await;
            }
            return reject(why);
        }
    };
    let nonce = wire::fresh_nonce();
    if framed.send(wire::encode(&auth.welcome(&peer, me, dialer_nonce, nonce))).await.is_err() {
        return;
    }
    let mut session = auth.session(&peer, me, dialer_nonce, nonce);
    loop {
        let frame = tokio::select! {
            _ = shutdown.changed() => return,
            frame = framed.next() => frame,
        };
        let message = match frame {
            None => return,
            Some(Err(_)) => return reject(Rejection::Malformed),
            Some(Ok(bytes)) => match wire::decode(&bytes).and_then(|f| session.open(f)) {
                Ok(m) => m,
                Err(why) => return reject(why),
            },
        };
        if inbox.try_send((peer.clone(), message)).is_err() {
            shared.bump(&shared.counters.messages_dropped);
        }
    }
}

/// Counts a refused frame or handshake by reason, and logs it with the peer's address at most
/// once per address per window (a flood of bad frames must not flood the log).
pub fn refused(shared: &Shared, me: &str, peer_address: &str, why: &Rejection) {
    shared.counters.reject(why.reason());
    let admitted = shared.auth_log.lock().expect("auth log lock").admit(peer_address, Instant::now());
    if let Some(suppressed) = admitted {
        log::warn!("{me}: refused a frame from {peer_address}: {why}{}", suppressed_note(suppressed));
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
    pub fn new(
        cfg: &NodeConfig,
        peer: &NodeId,
        address: &str,
        auth: Auth,
        shared: Arc<Shared>,
        seed: u64,
    ) -> Dialer {
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
            refused(&self.shared, &self.me, &self.address, &e);
            e.to_string()
        })?;
        Ok((framed, self.auth.session(&self.me, &self.peer, nonce, their_nonce)))
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
