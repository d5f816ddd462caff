//! Dumps that survive restarts, as a layer above the [`Cache`] handle:
//! [`Persistence`] writes every live entry (responses with their headers,
//! bodies, freshness as absolute times, validators, tags; variant indexes;
//! programmatic values) to a file atomically, restores one back when told
//! to (before serving), and runs an auto-dump task on an interval that can
//! be started, changed and stopped while the cache runs. The cache itself
//! knows nothing of it: building a cache does no I/O.
//!
//! ```
//! use cachet_core::{Cache, Identity};
//! use cachet_core::persistence::{Persistence, PersistenceConfig};
//! use std::time::Duration;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let dir = std::env::temp_dir().join(format!("cachet-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let file = dir.join("dump");
//! // Dumps are sealed with a key derived from the identity secret: set one
//! // (`[identity] secret_env`) for a later process to restore them.
//! let identity = || Identity::default().secret("from the environment");
//! let config = PersistenceConfig::new().dump_file(&file);
//! let cache = Cache::builder().identity(identity()).build()?;
//! cache.values().set("greeting", &"hello", Duration::from_secs(60)).await?;
//! let dumped = Persistence::new(&cache, config.clone()).dump_now()?;
//! assert_eq!(dumped.entries, 1);
//!
//! // A new process: the same configuration, and an explicit restore.
//! let again = Cache::builder().identity(identity()).build()?;
//! let report = Persistence::new(&again, config).restore();
//! assert_eq!(report.restored, 1);
//! let greeting: Option<String> = again.values().get("greeting").await?;
//! assert_eq!(greeting.as_deref(), Some("hello"));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

pub(crate) mod auto;
mod config;
mod file;

pub use self::auto::AutoDumpStatus;
pub use self::config::PersistenceConfig;

use self::auto::AutoDump;
use self::file::{Block, Encoder, Record, SealKey, Writer};
use crate::cache::Cache;
use crate::key::CacheKey;
use crate::store::wire::{millis, BadEntry};
use crate::store::{Entry, WalkPart};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// Dumps and restores of one [`Cache`], and its auto-dump task, as its
/// [`PersistenceConfig`] says. Clone it freely; clones share the task. The
/// auto-dump stops when the last clone is dropped.
#[derive(Clone)]
pub struct Persistence {
    shared: Arc<Shared>,
}

struct Shared {
    cache: Cache,
    config: PersistenceConfig,
    auto: AutoDump,
    last_restore: Mutex<Option<RestoreReport>>,
}

impl std::fmt::Debug for Persistence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persistence")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// What a dump wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DumpReport {
    /// The dump file.
    pub file: PathBuf,
    /// Entries written (responses, variant indexes and values).
    pub entries: u64,
    /// The file's size.
    pub bytes: u64,
    /// How long writing, syncing and verifying took.
    pub millis: u64,
}

/// What a restore found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RestoreReport {
    /// The file restored from (the dump, or a backup), if any was readable.
    pub file: Option<PathBuf>,
    /// Entries restored.
    pub restored: u64,
    /// Entries past their keep window, skipped.
    pub expired: u64,
    /// Entries of named caches this configuration does not have, or that
    /// did not decode, skipped.
    pub skipped: u64,
    /// The files that could not be read: `file at offset: reason`.
    pub failures: Vec<String>,
}

/// Why a dump failed. The previous dump is left as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DumpError {
    /// No dump file is configured.
    #[error("no dump file is configured ([persistence] dump_file)")]
    NoDumpFile,
    /// The store cannot walk its entries in place.
    #[error("this store cannot be dumped (it cannot walk its entries)")]
    Unsupported,
    /// Writing, syncing or renaming failed.
    #[error("dumping to {path}: {source}")]
    Io {
        /// The file written.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The written file did not read back intact.
    #[error("the dump written to {path} does not verify at offset {offset}: {reason}")]
    Verify {
        /// The temporary file.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// Why.
        reason: String,
    },
    /// The store failed while it was walked.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Auto-dump needs a Tokio runtime to run on.
    #[error("auto-dump needs a Tokio runtime")]
    NoRuntime,
}

impl Persistence {
    /// Dumps and restores of `cache` as `config` says. Does no I/O: call
    /// [`restore`](Self::restore) before serving, and
    /// [`start_auto_dump`](Self::start_auto_dump) for the interval.
    pub fn new(cache: &Cache, config: PersistenceConfig) -> Self {
        if let Some(file) = config.file() {
            if cache.inner.identity.is_random() {
                tracing::warn!(
                    file = %file.display(),
                    "dumps are sealed with this process's random identity secret: no later process can restore them (set [identity] secret_env)"
                );
            }
        }
        Self {
            shared: Arc::new(Shared {
                cache: cache.clone(),
                config,
                auto: AutoDump::default(),
                last_restore: Mutex::new(None),
            }),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &PersistenceConfig {
        &self.shared.config
    }

    /// The report of the last restore, if one ran.
    pub fn last_restore(&self) -> Option<RestoreReport> {
        self.shared
            .last_restore
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn cache(&self) -> &Cache {
        &self.shared.cache
    }

    /// Writes every live entry of every named cache to `path`, atomically:
    /// `<path>.tmp` is written, synced and read back, the current dump is
    /// kept as `<path>.bak`, and the new one renamed over it. Blocking: call
    /// it from `spawn_blocking` (or before serving) in async code.
    pub fn dump(&self, path: &Path) -> Result<DumpReport, DumpError> {
        let _writing = self
            .shared
            .auto
            .writing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let started = Instant::now();
        let tmp = file::sibling(path, ".tmp");
        let io = |source| DumpError::Io {
            path: tmp.clone(),
            source,
        };
        let result = self.write(&tmp).and_then(|(entries, bytes)| {
            if let Err(unreadable) = file::read(&tmp, self.seal(), self.fingerprint(), None) {
                return Err(DumpError::Verify {
                    path: tmp.clone(),
                    offset: unreadable.offset,
                    reason: unreadable.reason,
                });
            }
            file::install(&tmp, path, self.shared.config.backups()).map_err(io)?;
            Ok((entries, bytes))
        });
        match result {
            Ok((entries, bytes)) => {
                let report = DumpReport {
                    file: path.to_owned(),
                    entries,
                    bytes,
                    millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                };
                tracing::info!(file = %path.display(), entries, bytes, millis = report.millis, "dumped the cache");
                Ok(report)
            }
            Err(error) => {
                let _ = std::fs::remove_file(&tmp);
                tracing::error!(%error, "dumping the cache failed; the previous dump is kept");
                Err(error)
            }
        }
    }

    /// [`dump`](Self::dump) to the configured dump file.
    pub fn dump_now(&self) -> Result<DumpReport, DumpError> {
        let path = self.shared.config.file().ok_or(DumpError::NoDumpFile)?;
        self.dump(path)
    }

    /// Writes every kept entry to `tmp`: worker threads walk parts of the
    /// caches and encode blocks (reading entries scattered over the heap is
    /// most of a dump's time), this thread writes the blocks as they come.
    fn write(&self, tmp: &Path) -> Result<(u64, u64), DumpError> {
        let inner = &self.cache().inner;
        let io = |source| DumpError::Io {
            path: tmp.to_owned(),
            source,
        };
        let now = millis(inner.clock.now());
        let mut writer = Writer::create(tmp, self.seal(), self.fingerprint(), now).map_err(io)?;
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4));
        // A few parts per worker, so that none waits on a large last one.
        let work: Vec<(&str, WalkPart)> = inner
            .caches
            .keys()
            .flat_map(|cache| WalkPart::split(4 * workers).map(move |part| (cache.as_str(), part)))
            .collect();
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let seal = self.seal();
        // Bounded: a dump holds a few blocks at a time, never the cache.
        let (blocks, received) = std::sync::mpsc::sync_channel::<Block>(2 * workers);
        let encoded = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    let blocks = blocks.clone();
                    let (work, next, stop) = (&work, &next, &stop);
                    scope.spawn(move || {
                        let encoded = encode(inner, work, next, stop, &blocks, tmp, seal);
                        if encoded.is_err() {
                            stop.store(true, Ordering::Relaxed);
                        }
                        encoded
                    })
                })
                .collect();
            drop(blocks);
            let mut result = Ok(());
            for block in &received {
                if let Err(error) = writer.block(&block) {
                    result = Err(io(error));
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
            }
            // Workers still sending find nobody listening and stop.
            drop(received);
            for handle in handles {
                let worked = handle
                    .join()
                    .unwrap_or_else(|_| Err(io(std::io::Error::other("a dump worker panicked"))));
                result = result.and(worked);
            }
            result
        });
        encoded?;
        writer.finish().map_err(io)
    }

    /// Restores the configured dump file (see [`restore_from`](Self::restore_from)),
    /// unless `[persistence] restore = false` or no file is configured (an
    /// empty report). Blocking: call it before serving, or from
    /// `spawn_blocking`. The report is kept for [`last_restore`](Self::last_restore).
    pub fn restore(&self) -> RestoreReport {
        match self.shared.config.file() {
            Some(file) if self.shared.config.restores() => self.restore_from(file),
            _ => RestoreReport::default(),
        }
    }

    /// Restores the dump at `path` — or, when it is missing, corrupt,
    /// truncated or of another version, its newest readable backup — into
    /// this cache. Never fails: what could not be read is in the report
    /// (and logged), and the cache is then left as it was. Entries past
    /// their keep window are skipped; stale ones kept for revalidation come
    /// back stale; per-user entries come back only under the identity
    /// secret they were written with. Blocking, like [`dump`](Self::dump).
    pub fn restore_from(&self, path: &Path) -> RestoreReport {
        let report = self.restore_candidates(path);
        *self
            .shared
            .last_restore
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(report.clone());
        report
    }

    fn restore_candidates(&self, path: &Path) -> RestoreReport {
        let mut report = RestoreReport::default();
        let candidates = std::iter::once(path.to_owned())
            .chain(file::backups(path, self.shared.config.backups().max(1)));
        for candidate in candidates {
            if !candidate.exists() {
                continue;
            }
            // Read through first, so that a corrupt file applies nothing.
            if let Err(unreadable) = file::read(&candidate, self.seal(), self.fingerprint(), None) {
                let failure = unreadable.in_file(&candidate);
                tracing::warn!(failure, "a dump could not be restored; trying its backup");
                report.failures.push(failure);
                continue;
            }
            self.apply(&candidate, &mut report);
            tracing::info!(
                file = %candidate.display(),
                restored = report.restored,
                expired = report.expired,
                "restored the cache"
            );
            report.file = Some(candidate);
            return report;
        }
        if report.failures.is_empty() {
            tracing::info!(file = %path.display(), "no dump to restore; starting empty");
        }
        report
    }

    /// Restores the verified dump at `path`: one thread reads its blocks,
    /// the others decode them and insert their entries.
    fn apply(&self, path: &Path, report: &mut RestoreReport) {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4));
        let (blocks, received) = std::sync::mpsc::sync_channel::<Vec<u8>>(2 * workers);
        let received = std::sync::Mutex::new(received);
        let reports = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        let mut local = RestoreReport::default();
                        loop {
                            let next = received
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .recv();
                            let Ok(block) = next else { break };
                            let decoded = file::records(&block, |record| {
                                self.restore_record(record, &mut local);
                            });
                            if let Err(reason) = decoded {
                                local.failures.push(format!("{}: {reason}", path.display()));
                            }
                        }
                        local
                    })
                })
                .collect();
            let read = file::read(
                path,
                self.seal(),
                self.fingerprint(),
                Some(&mut |block: Vec<u8>| {
                    let _ = blocks.send(block);
                }),
            );
            drop(blocks);
            if let Err(unreadable) = read {
                report.failures.push(unreadable.in_file(path));
            }
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap_or_default())
                .collect::<Vec<_>>()
        });
        for local in reports {
            report.restored += local.restored;
            report.expired += local.expired;
            report.skipped += local.skipped;
            report.failures.extend(local.failures);
        }
    }

    /// The key this cache's dumps are sealed with, derived from the
    /// identity secret: a dump verifies only under the secret it was
    /// written with (with a random secret, only in the process that wrote
    /// it), so keys derived from that secret always mean what they did.
    fn seal(&self) -> SealKey {
        SealKey(
            self.cache()
                .inner
                .identity
                .derive_key("cachet dump seal v1"),
        )
    }

    fn fingerprint(&self) -> [u8; 16] {
        self.cache().inner.identity.fingerprint()
    }

    fn restore_record(&self, record: Record<'_>, report: &mut RestoreReport) {
        let inner = &self.cache().inner;
        if !inner.caches.contains_key(record.cache) {
            report.skipped += 1;
            return;
        }
        // Restored into memory, usually before an adapter is set up: room
        // for a form costs nothing until a hit of such an adapter makes one.
        let entry = match Entry::from_wire(record.entry, true) {
            Ok(entry) => entry,
            Err(BadEntry(reason)) => {
                tracing::debug!(key = record.key, reason, "a dumped entry does not rebuild");
                report.skipped += 1;
                return;
            }
        };
        if !entry.is_kept(inner.clock.now()) {
            report.expired += 1;
            return;
        }
        let key = CacheKey::from_raw(record.key);
        let inserted = inner
            .store
            .immediate()
            .and_then(|store| store.insert_now(record.cache, &key, entry));
        match inserted {
            Some(Ok(())) => report.restored += 1,
            Some(Err(error)) => {
                tracing::warn!(%error, "restoring an entry failed");
                report.skipped += 1;
            }
            None => {
                static WARNED: AtomicBool = AtomicBool::new(false);
                if !WARNED.swap(true, Ordering::Relaxed) {
                    tracing::warn!("this store cannot be restored into synchronously");
                }
                report.skipped += 1;
            }
        }
    }
}

/// A dump worker: takes the next (cache, part) of `work` until none is
/// left (or `stop`), and sends the blocks it encodes.
fn encode(
    inner: &crate::cache::Inner,
    work: &[(&str, WalkPart)],
    next: &AtomicUsize,
    stop: &AtomicBool,
    blocks: &SyncSender<Block>,
    tmp: &Path,
    seal: SealKey,
) -> Result<(), DumpError> {
    let mut encoder = Encoder::new(seal);
    while let Some(&(cache, part)) = work.get(next.fetch_add(1, Ordering::Relaxed)) {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut failed = None;
        let walker = inner.store.walker().ok_or(DumpError::Unsupported)?;
        let walked = walker.walk(cache, part, &mut |key: &str, entry: &Entry| {
            let record = Record {
                cache,
                key,
                entry: entry.to_wire(),
            };
            match encoder.record(&record) {
                Ok(None) => true,
                // The writer stopped: so does the walk.
                Ok(Some(block)) => blocks.send(block).is_ok(),
                Err(error) => {
                    failed = Some(error);
                    false
                }
            }
        });
        walked?;
        if let Some(source) = failed {
            return Err(DumpError::Io {
                path: tmp.to_owned(),
                source,
            });
        }
    }
    if let Some(block) = encoder.finish() {
        let _ = blocks.send(block);
    }
    Ok(())
}
