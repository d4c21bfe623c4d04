//! The durable state of one node: one small checksummed file, replaced atomically (write a temp
//! file, fsync it, rename it over the old one, fsync the directory). A file that is unreadable or
//! fails its checksum stops the node with an error naming it; it is never silently reset.
//!
//! A running node holds an advisory lock on the data_dir itself (flock on the directory, through
//! std's `File::try_lock`), so deleting a file cannot undo it: a second process, or a second node
//! of this one, on the same directory is refused with the holder named, instead of both writing
//! one file. `quorate.lock` holds the holder's pid and marks a directory that has held a durable
//! state: it is written only once the first state file is durable, so a node killed at any point
//! of its very first start (before it could vote) starts again, while a state file lost from a
//! marked directory stops the node rather than let it vote twice in a term.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use quorate_engine::{HardState, NodeId};

pub const STATE_FILE: &str = "quorate-state";
pub const LOCK_FILE: &str = "quorate.lock";
const MAGIC: &[u8; 4] = b"QRS1";
const CHECKSUM_BYTES: usize = 8;
/// A valid file is a few dozen bytes; anything larger is not ours.
const MAX_FILE_BYTES: u64 = 4096;
/// The pid in the marker is a few bytes; read no more than this of it.
const MAX_MARKER_BYTES: u64 = 64;

#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: corrupt state file ({why}); refusing to start rather than forget a vote")]
    Corrupt { path: PathBuf, why: String },
    #[error("{path}: missing, in a data_dir that has held a node's state ({LOCK_FILE} is there); refusing to start from term 0, which could vote twice in a term. To reset on purpose, delete {LOCK_FILE} as well")]
    Missing { path: PathBuf },
    #[error("{path}: the data_dir is in use by {holder}; two nodes must never share one")]
    Locked { path: PathBuf, holder: String },
    #[error("{path}: belongs to node {found_node:?} of cluster {found_cluster:?}, not {node:?} of {cluster:?}")]
    WrongOwner { path: PathBuf, found_node: NodeId, found_cluster: String, node: NodeId, cluster: String },
}

/// What is on disk: the hard state, and whose it is (so a data_dir reused for another node or
/// cluster is caught instead of lending it a stranger's vote).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    node: NodeId,
    cluster: String,
    term: u64,
    voted_for: Option<NodeId>,
}

#[derive(Debug)]
pub struct DurableState {
    dir: PathBuf,
    node: NodeId,
    cluster: String,
    /// The open data_dir while this process holds its lock; closing it releases the lock.
    lock: Option<File>,
}

impl DurableState {
    /// Names the state in `dir` without touching the disk (tests, and `open`).
    pub fn new(dir: impl Into<PathBuf>, node: &str, cluster: &str) -> DurableState {
        DurableState { dir: dir.into(), node: node.to_string(), cluster: cluster.to_string(), lock: None }
    }

    /// Takes `dir` for a running node: creates it, locks it, loads the hard state and writes it
    /// back (write, fsync, rename, fsync), proving that the node can make a vote durable before it
    /// ever casts one. Every failure names the path and the OS reason.
    pub fn open(dir: impl Into<PathBuf>, node: &str, cluster: &str) -> Result<(DurableState, HardState), DurableError> {
        let mut d = DurableState::new(dir, node, cluster);
        fs::create_dir_all(&d.dir).map_err(d.io(&d.dir))?;
        d.lock = Some(d.take_lock()?);
        // The marker is written after the first state file is durable and never removed: if it is
        // here and the state is not, the state was lost, and starting fresh could vote twice.
        let marker = d.dir.join(LOCK_FILE);
        if marker.exists() && !d.path().exists() {
            return Err(DurableError::Missing { path: d.path() });
        }
        let hard = d.load()?;
        d.save(&hard)?;
        d.mark(&marker)?;
        Ok((d, hard))
    }

    /// Locks the data_dir itself, or names who holds it.
    fn take_lock(&self) -> Result<File, DurableError> {
        let dir = File::open(&self.dir).map_err(self.io(&self.dir))?;
        match dir.try_lock() {
            Ok(()) => Ok(dir),
            Err(fs::TryLockError::WouldBlock) => {
                let path = self.dir.join(LOCK_FILE);
                let holder = match read_bounded(&path, MAX_MARKER_BYTES).ok().and_then(|b| pid_in(&b)) {
                    Some(pid) if pid == std::process::id() => format!("another node of this process (pid {pid})"),
                    Some(pid) => format!("process {pid}"),
                    None => "another process".to_string(),
                };
                Err(DurableError::Locked { path, holder })
            }
            Err(fs::TryLockError::Error(e)) => Err(self.io(&self.dir)(e)),
        }
    }

    /// Writes this process's pid into the marker, making it (and so the directory's "has held a
    /// state" mark) durable when it is new.
    fn mark(&self, marker: &Path) -> Result<(), DurableError> {
        let new = !marker.exists();
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(marker).map_err(self.io(marker))?;
        f.write_all(format!("{}\n", std::process::id()).as_bytes()).map_err(self.io(marker))?;
        if new {
            f.sync_all().map_err(self.io(marker))?;
            File::open(&self.dir).and_then(|d| d.sync_all()).map_err(self.io(&self.dir))?;
        }
        Ok(())
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    fn io(&self, path: &Path) -> impl FnOnce(std::io::Error) -> DurableError {
        let path = path.to_path_buf();
        move |source| DurableError::Io { path, source }
    }

    /// The persisted hard state; a fresh (zero) state when the file does not exist yet. Creates
    /// the directory if needed.
    pub fn load(&self) -> Result<HardState, DurableError> {
        fs::create_dir_all(&self.dir).map_err(self.io(&self.dir))?;
        let path = self.path();
        let bytes = match read_bounded(&path, MAX_FILE_BYTES) {
            Err(Bounded::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HardState::default()),
            Err(Bounded::Io(e)) => return Err(self.io(&path)(e)),
            Err(Bounded::Refused(why)) => return Err(DurableError::Corrupt { path, why }),
            Ok(bytes) => bytes,
        };
        let corrupt = |why: &str| DurableError::Corrupt { path: path.clone(), why: why.to_string() };
        if bytes.len() < MAGIC.len() + CHECKSUM_BYTES || &bytes[..MAGIC.len()] != MAGIC {
            return Err(corrupt("bad header"));
        }
        let (body, sum) = bytes[MAGIC.len()..].split_at(bytes.len() - MAGIC.len() - CHECKSUM_BYTES);
        if checksum(body) != sum {
            return Err(corrupt("checksum mismatch"));
        }
        let record: Record = postcard::from_bytes(body).map_err(|_| corrupt("undecodable body"))?;
        if record.node != self.node || record.cluster != self.cluster {
            return Err(DurableError::WrongOwner {
                path,
                found_node: record.node,
                found_cluster: record.cluster,
                node: self.node.clone(),
                cluster: self.cluster.clone(),
            });
        }
        Ok(HardState { term: record.term, voted_for: record.voted_for })
    }

    /// Makes `hard` durable before returning: nothing that depends on it may be sent before.
    pub fn save(&self, hard: &HardState) -> Result<(), DurableError> {
        let record = Record {
            node: self.node.clone(),
            cluster: self.cluster.clone(),
            term: hard.term,
            voted_for: hard.voted_for.clone(),
        };
        let body = postcard::to_allocvec(&record).expect("a record always encodes");
        let mut bytes = Vec::with_capacity(MAGIC.len() + body.len() + CHECKSUM_BYTES);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&checksum(&body));

        fs::create_dir_all(&self.dir).map_err(self.io(&self.dir))?;
        let path = self.path();
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp).map_err(self.io(&tmp))?;
        f.write_all(&bytes).map_err(self.io(&tmp))?;
        f.sync_all().map_err(self.io(&tmp))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(self.io(&path))?;
        // The rename itself must be durable too.
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(self.io(&self.dir))?;
        Ok(())
    }
}

/// Why a file could not be read by [`read_bounded`].
enum Bounded {
    Io(std::io::Error),
    /// Not a regular file of at most the limit: a symlink, FIFO, device, directory, or too large.
    Refused(String),
}

/// Reads a regular file of at most `limit` bytes. A symlink is not followed and a FIFO is opened
/// without blocking, so neither a FIFO nor a link to /dev/zero can hang or exhaust a start.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, Bounded> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // O_NOFOLLOW | O_NONBLOCK (Linux values; std exposes no names for them).
    const NOFOLLOW: i32 = 0o400000;
    const NONBLOCK: i32 = 0o4000;
    let file = match OpenOptions::new().read(true).custom_flags(NOFOLLOW | NONBLOCK).open(path) {
        // ELOOP: the last component is a symlink.
        Err(e) if e.raw_os_error() == Some(40) => return Err(Bounded::Refused("a symlink, not a regular file".into())),
        Err(e) => return Err(Bounded::Io(e)),
        Ok(f) => f,
    };
    let meta = file.metadata().map_err(Bounded::Io)?;
    if !meta.is_file() {
        return Err(Bounded::Refused(format!("not a regular file ({:?})", meta.file_type())));
    }
    if meta.len() > limit {
        return Err(Bounded::Refused(format!("{} bytes is too large", meta.len())));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(Bounded::Io)?;
    if bytes.len() as u64 > limit {
        return Err(Bounded::Refused("grew past its size limit while being read".into()));
    }
    Ok(bytes)
}

fn pid_in(bytes: &[u8]) -> Option<u32> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

fn checksum(body: &[u8]) -> [u8; CHECKSUM_BYTES] {
    let digest = Sha256::digest(body);
    let mut out = [0u8; CHECKSUM_BYTES];
    out.copy_from_slice(&digest[..CHECKSUM_BYTES]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("quorate-durable-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_missing_file_is_a_fresh_node_and_a_saved_state_loads_back() {
        let dir = tempdir("roundtrip");
        let d = DurableState::new(&dir, "a", "c1");
        assert_eq!(d.load().unwrap(), HardState::default());
        let hard = HardState { term: 7, voted_for: Some("b".into()) };
        d.save(&hard).unwrap();
        assert_eq!(d.load().unwrap(), hard);
        assert!(!dir.join(format!("{STATE_FILE}.tmp")).exists(), "the temp file was renamed away");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_flipped_byte_is_refused_with_the_file_named() {
        let dir = tempdir("corrupt");
        let d = DurableState::new(&dir, "a", "c1");
        d.save(&HardState { term: 3, voted_for: None }).unwrap();
        let mut bytes = fs::read(d.path()).unwrap();
        bytes[6] ^= 0x40;
        fs::write(d.path(), bytes).unwrap();
        let err = d.load().unwrap_err().to_string();
        assert!(err.contains(STATE_FILE) && err.contains("checksum"), "{err}");
        fs::write(d.path(), b"garbage").unwrap();
        assert!(d.load().unwrap_err().to_string().contains("bad header"));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_locked_directory_is_refused_with_the_holder_named_and_freed_on_drop() {
        let dir = tempdir("lock");
        let (first, hard) = DurableState::open(&dir, "a", "c1").unwrap();
        assert_eq!(hard, HardState::default());
        assert!(dir.join(STATE_FILE).exists(), "open proves the directory writable by writing the state");
        let err = DurableState::open(&dir, "a", "c1").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, DurableError::Locked { .. }), "{text}");
        assert!(text.contains(&std::process::id().to_string()) && text.contains(LOCK_FILE), "{text}");
        drop(first);
        DurableState::open(&dir, "a", "c1").expect("the lock is released with the state");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_state_file_lost_from_a_used_data_dir_is_refused_until_reset_on_purpose() {
        let dir = tempdir("missing");
        let (d, _) = DurableState::open(&dir, "a", "c1").unwrap();
        d.save(&HardState { term: 9, voted_for: Some("b".into()) }).unwrap();
        drop(d);
        fs::remove_file(dir.join(STATE_FILE)).unwrap();
        let err = DurableState::open(&dir, "a", "c1").unwrap_err();
        assert!(matches!(err, DurableError::Missing { .. }) && err.to_string().contains(LOCK_FILE), "{err}");
        fs::remove_file(dir.join(LOCK_FILE)).unwrap();
        let (_, hard) = DurableState::open(&dir, "a", "c1").expect("a deliberate reset starts fresh");
        assert_eq!(hard, HardState::default());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_node_killed_at_any_point_of_its_first_start_starts_again() {
        // Each state a first start can leave behind when killed before open() returned, i.e.
        // before the node could vote: the directory alone, a half-written temp file, a state file
        // whose marker was not yet written.
        let dir = tempdir("first-start");
        for leftover in ["nothing", "temp", "state"] {
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            match leftover {
                "temp" => fs::write(dir.join(format!("{STATE_FILE}.tmp")), b"QRS").unwrap(),
                "state" => DurableState::new(&dir, "a", "c1").save(&HardState::default()).unwrap(),
                _ => {}
            }
            let (d, hard) = DurableState::open(&dir, "a", "c1").unwrap_or_else(|e| panic!("{leftover}: {e}"));
            assert_eq!(hard, HardState::default(), "{leftover}");
            assert!(dir.join(LOCK_FILE).exists(), "{leftover}: the directory is marked once the state is durable");
            drop(d);
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn deleting_the_lock_file_does_not_let_a_second_node_in() {
        let dir = tempdir("lock-deleted");
        let (first, _) = DurableState::open(&dir, "a", "c1").unwrap();
        fs::remove_file(dir.join(LOCK_FILE)).unwrap();
        let err = DurableState::open(&dir, "a", "c1").unwrap_err();
        assert!(matches!(err, DurableError::Locked { .. }), "{err}");
        drop(first);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_state_file_that_is_not_a_regular_file_is_refused_without_hanging() {
        let dir = tempdir("irregular");
        fs::create_dir_all(&dir).unwrap();
        let d = DurableState::new(&dir, "a", "c1");
        std::os::unix::fs::symlink("/dev/zero", d.path()).unwrap();
        let err = d.load().unwrap_err().to_string();
        assert!(err.contains("symlink"), "{err}");
        fs::remove_file(d.path()).unwrap();
        let made = std::process::Command::new("mkfifo").arg(d.path()).status().expect("mkfifo runs");
        assert!(made.success());
        let err = d.load().unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        fs::remove_file(d.path()).unwrap();
        fs::create_dir(d.path()).unwrap();
        assert!(d.load().unwrap_err().to_string().contains("not a regular file"));
        fs::remove_dir(d.path()).unwrap();
        fs::write(d.path(), vec![0u8; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert!(d.load().unwrap_err().to_string().contains("too large"));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_write_the_disk_refuses_is_an_error_naming_the_file() {
        let dir = tempdir("refused");
        // Root ignores permissions, so refuse the write another way: the temp file is a directory.
        fs::create_dir_all(dir.join(format!("{STATE_FILE}.tmp"))).unwrap();
        let err = DurableState::open(&dir, "a", "c1").unwrap_err().to_string();
        assert!(err.contains(&format!("{STATE_FILE}.tmp")), "{err}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn another_nodes_state_is_refused() {
        let dir = tempdir("owner");
        DurableState::new(&dir, "a", "c1").save(&HardState { term: 1, voted_for: None }).unwrap();
        let err = DurableState::new(&dir, "b", "c1").load().unwrap_err();
        assert!(matches!(err, DurableError::WrongOwner { .. }), "{err}");
        assert!(DurableState::new(&dir, "a", "c2").load().is_err());
        fs::remove_dir_all(dir).unwrap();
    }
}
