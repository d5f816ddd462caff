//! The dump file: a versioned header, blocks of records each with its
//! MAC, and a footer that seals the file — written to `<file>.tmp`,
//! synced, read back and verified, then moved over `<file>` after the
//! previous dump was linked to `<file>.bak`.
//!
//! ```text
//! header  "CACHETDMP" · version u16 · secret fingerprint [16] · written at (ms) u64
//! block   length u32 (> 0) · mac(payload)[..16] · payload: postcard records · records u32
//! …
//! footer  0u32 · records u64 · mac(header, every block's MAC and count)[..16]
//! ```
//!
//! The MACs are BLAKE3 in keyed mode under a [`SealKey`] derived from the
//! identity secret: they catch corruption, and they catch forgery — whoever
//! can write the file but does not know the secret cannot make a block or
//! a footer that verifies. The fingerprint only makes the refusal of a dump
//! sealed under another secret say so.
//!
//! A record is `(cache, key, entry)` with the entry in the shared
//! `store::wire` form. Nothing is ever held whole in memory: each encoder
//! (one per dump thread) fills one block at a time from the store, the
//! writer writes blocks as they come (in any order: each stands alone),
//! the reader reads one block at a time.

use crate::store::wire::WireEntry;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 9] = b"CACHETDMP";
/// The format version; a dump of another version is not read.
/// Version 2 seals with keyed MACs; version 1 had unkeyed checksums.
pub(crate) const VERSION: u16 = 2;
const HEADER_LEN: usize = MAGIC.len() + 2 + 16 + 8;
/// How many bytes of records a block holds before it is written.
const BLOCK_BYTES: usize = 256 * 1024;
/// The largest block a reader accepts (a record may push a block past
/// `BLOCK_BYTES`; a corrupt length must not make the reader allocate
/// gigabytes).
const MAX_BLOCK_BYTES: usize = 256 * 1024 * 1024;

/// One stored value as a dump holds it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Record<'a> {
    pub(crate) cache: &'a str,
    pub(crate) key: &'a str,
    #[serde(borrow)]
    pub(crate) entry: WireEntry<'a>,
}

/// `<path>` with `suffix` appended (`dump` → `dump.tmp`).
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The backups of `path`, newest first: `<file>.bak`, `<file>.bak.2`, …
pub(crate) fn backups(path: &Path, keep: usize) -> Vec<PathBuf> {
    (1..=keep)
        .map(|n| match n {
            1 => sibling(path, ".bak"),
            n => sibling(path, &format!(".bak.{n}")),
        })
        .collect()
}

/// The key a dump's MACs are computed with (see the module docs).
#[derive(Clone, Copy)]
pub(crate) struct SealKey(pub(crate) [u8; 32]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    fn mac(&self, bytes: &[u8]) -> [u8; 16] {
        truncated(&blake3::keyed_hash(&self.0, bytes))
    }

    fn hasher(&self) -> blake3::Hasher {
        blake3::Hasher::new_keyed(&self.0)
    }
}

fn truncated(hash: &blake3::Hash) -> [u8; 16] {
    let mut sum = [0; 16];
    sum.copy_from_slice(&hash.as_bytes()[..16]);
    sum
}

/// Writes a dump, block by block.
/// Encodes records into blocks; several encoders (one per thread) can feed
/// one [`Writer`].
#[derive(Debug)]
pub(crate) struct Encoder {
    seal: SealKey,
    block: Vec<u8>,
    /// Records in `block`.
    records: u32,
}

/// A block's records, encoded, and how many there are.
#[derive(Debug)]
pub(crate) struct Block {
    payload: Vec<u8>,
    records: u32,
    sum: [u8; 16],
}

impl Encoder {
    /// An encoder whose blocks carry MACs under `seal`.
    pub(crate) fn new(seal: SealKey) -> Self {
        Self {
            seal,
            block: Vec::with_capacity(BLOCK_BYTES + 64 * 1024),
            records: 0,
        }
    }

    /// Adds one record; the block, once it is full.
    pub(crate) fn record(&mut self, record: &Record<'_>) -> io::Result<Option<Block>> {
        // Encoded into a slice (postcard copies byte strings whole into
        // one, where an `io::Write` target takes many small writes), with
        // room for the record's size estimate, more if that was short.
        let start = self.block.len();
        let mut room = record.cache.len() + record.key.len() + record.entry.size_hint();
        loop {
            self.block.resize(start + room, 0);
            match postcard::to_slice(record, &mut self.block[start..]) {
                Ok(used) => {
                    let used = used.len();
                    self.block.truncate(start + used);
                    break;
                }
                Err(postcard::Error::SerializeBufferFull) => room *= 2,
                Err(error) => {
                    self.block.truncate(start);
                    return Err(io::Error::other(format!("encoding a record: {error}")));
                }
            }
        }
        self.records += 1;
        Ok((self.block.len() >= BLOCK_BYTES).then(|| self.take()))
    }

    /// The records not yet in a block, if any.
    pub(crate) fn finish(mut self) -> Option<Block> {
        (self.records > 0).then(|| self.take())
    }

    fn take(&mut self) -> Block {
        let payload =
            std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK_BYTES + 64 * 1024));
        Block {
            sum: self.seal.mac(&payload),
            payload,
            records: std::mem::take(&mut self.records),
        }
    }
}

/// Writes a dump: the header, the blocks in the order given, the footer.
pub(crate) struct Writer {
    out: BufWriter<File>,
    sealed: blake3::Hasher,
    records: u64,
    bytes: u64,
}

impl Writer {
    /// Starts `path` (created or truncated) with the header; the footer
    /// will be sealed under `seal`.
    pub(crate) fn create(
        path: &Path,
        seal: SealKey,
        fingerprint: [u8; 16],
        written_at: u64,
    ) -> io::Result<Self> {
        let file = File::create(path)?;
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&fingerprint);
        header.extend_from_slice(&written_at.to_le_bytes());
        let mut out = BufWriter::with_capacity(1024 * 1024, file);
        out.write_all(&header)?;
        let mut sealed = seal.hasher();
        sealed.update(&header);
        Ok(Self {
            out,
            sealed,
            records: 0,
            bytes: HEADER_LEN as u64,
        })
    }

    /// Writes `block`, with its length, checksum and record count.
    pub(crate) fn block(&mut self, block: &Block) -> io::Result<()> {
        let len = u32::try_from(block.payload.len())
            .map_err(|_| io::Error::other("a block over 4 GiB"))?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&block.sum)?;
        self.out.write_all(&block.payload)?;
        self.out.write_all(&block.records.to_le_bytes())?;
        self.sealed.update(&block.sum);
        self.sealed.update(&block.records.to_le_bytes());
        self.bytes += 4 + 16 + block.payload.len() as u64 + 4;
        self.records += u64::from(block.records);
        Ok(())
    }

    /// Writes the last block and the footer, and syncs the file to disk;
    /// how many records and bytes were written.
    pub(crate) fn finish(mut self) -> io::Result<(u64, u64)> {
        let sum = truncated(&self.sealed.finalize());
        self.out.write_all(&0u32.to_le_bytes())?;
        self.out.write_all(&self.records.to_le_bytes())?;
        self.out.write_all(&sum)?;
        let file = self
            .out
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        Ok((self.records, self.bytes + 4 + 8 + 16))
    }
}

/// Why a dump could not be read: where, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unreadable {
    pub(crate) offset: u64,
    pub(crate) reason: String,
}

impl Unreadable {
    fn at(offset: u64, reason: impl Into<String>) -> Self {
        Self {
            offset,
            reason: reason.into(),
        }
    }

    /// `file at offset N: reason`, as restores report it.
    pub(crate) fn in_file(&self, path: &Path) -> String {
        format!(
            "{} at offset {}: {}",
            path.display(),
            self.offset,
            self.reason
        )
    }
}

/// What a read hands each verified block to.
pub(crate) type Blocks<'f> = &'f mut dyn FnMut(Vec<u8>);

/// Reads the dump at `path` through: the header, every block's MAC, the
/// footer's count and seal, all under `seal`. With `blocks`, also hands it
/// each block's records, verified ([`records`] decodes them). Call it so
/// only on a file that was read through without it first, so that a
/// corrupt or forged file applies nothing.
pub(crate) fn read(
    path: &Path,
    seal: SealKey,
    fingerprint: [u8; 16],
    mut blocks: Option<Blocks<'_>>,
) -> Result<u64, Unreadable> {
    let file = File::open(path).map_err(|error| Unreadable::at(0, error.to_string()))?;
    let mut input = BufReader::with_capacity(1024 * 1024, file);
    let mut offset = 0u64;
    let exact = |input: &mut BufReader<File>, buf: &mut [u8], offset: &mut u64, what: &str| {
        input.read_exact(buf).map_err(|error| {
            let reason = if error.kind() == io::ErrorKind::UnexpectedEof {
                format!("truncated: the file ends inside the {what}")
            } else {
                error.to_string()
            };
            Unreadable::at(*offset, reason)
        })?;
        *offset += buf.len() as u64;
        Ok::<(), Unreadable>(())
    };
    let mut header = [0u8; HEADER_LEN];
    exact(&mut input, &mut header, &mut offset, "header")?;
    if &header[..MAGIC.len()] != MAGIC {
        return Err(Unreadable::at(0, "not a cachet dump"));
    }
    let version = u16::from_le_bytes([header[9], header[10]]);
    if version != VERSION {
        return Err(Unreadable::at(
            9,
            format!("format version {version}; this build reads version {VERSION}"),
        ));
    }
    if header[11..27] != fingerprint {
        return Err(Unreadable::at(
            11,
            "sealed under another identity secret (a random one, unless [identity] secret_env is set): only the process that wrote it can restore it",
        ));
    }
    let mut sealed = seal.hasher();
    sealed.update(&header);
    let mut records = 0u64;
    let mut block = Vec::new();
    loop {
        let start = offset;
        let mut len = [0u8; 4];
        exact(&mut input, &mut len, &mut offset, "block length")?;
        let len = u32::from_le_bytes(len) as usize;
        if len == 0 {
            let mut footer = [0u8; 8 + 16];
            exact(&mut input, &mut footer, &mut offset, "footer")?;
            let count = u64::from_le_bytes(footer[..8].try_into().expect("8 bytes"));
            if count != records {
                return Err(Unreadable::at(
                    start,
                    format!("the footer counts {count} records, the blocks hold {records}"),
                ));
            }
            if footer[8..] != truncated(&sealed.finalize()) {
                return Err(Unreadable::at(start, "the footer's MAC does not verify"));
            }
            let mut rest = [0u8; 1];
            if input
                .read(&mut rest)
                .map_err(|e| Unreadable::at(offset, e.to_string()))?
                != 0
            {
                return Err(Unreadable::at(offset, "bytes after the footer"));
            }
            return Ok(records);
        }
        if len > MAX_BLOCK_BYTES {
            return Err(Unreadable::at(start, format!("a block of {len} bytes")));
        }
        let mut sum = [0u8; 16];
        exact(&mut input, &mut sum, &mut offset, "block checksum")?;
        block.resize(len, 0);
        exact(&mut input, &mut block, &mut offset, "block")?;
        if seal.mac(&block) != sum {
            return Err(Unreadable::at(start, "a block's MAC does not verify"));
        }
        sealed.update(&sum);
        let mut count = [0u8; 4];
        exact(&mut input, &mut count, &mut offset, "block's record count")?;
        sealed.update(&count);
        records += u64::from(u32::from_le_bytes(count));
        if let Some(blocks) = blocks.as_mut() {
            blocks(std::mem::take(&mut block));
        }
    }
}

/// Decodes the records of a verified block, in order; why one does not.
pub(crate) fn records(block: &[u8], mut each: impl FnMut(Record<'_>)) -> Result<(), String> {
    let mut rest = block;
    while !rest.is_empty() {
        let (record, tail) = postcard::take_from_bytes::<Record<'_>>(rest)
            .map_err(|error| format!("a record does not decode: {error}"))?;
        each(record);
        rest = tail;
    }
    Ok(())
}

/// Makes the just-written `tmp` the dump at `path`: the current dump is
/// kept as the newest backup (a hard link, so `path` never goes missing),
/// older backups shift, `tmp` is renamed over `path`, and the directory is
/// synced so the rename survives a crash.
pub(crate) fn install(tmp: &Path, path: &Path, keep_backups: usize) -> io::Result<()> {
    if keep_backups > 0 && path.exists() {
        let backups = backups(path, keep_backups);
        for pair in backups.windows(2).rev() {
            if pair[0].exists() {
                fs::rename(&pair[0], &pair[1])?;
            }
        }
        let newest = &backups[0];
        match fs::remove_file(newest) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        if fs::hard_link(path, newest).is_err() {
            fs::copy(path, newest)?;
        }
    }
    fs::rename(tmp, path)?;
    sync_directory(path)
}

/// Syncs the directory holding `path`, so that a rename in it survives a
/// crash (POSIX; elsewhere a directory cannot be opened to sync it).
fn sync_directory(path: &Path) -> io::Result<()> {
    if cfg!(unix) {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}
