//! # duet-store
//!
//! duet's durable lease store: [`JournalStore`], an append-only,
//! checksummed journal file implementing [`duet_core::store::LeaseStore`].
//! Each [`Batch`](duet_core::store::Batch) (one group commit) becomes one
//! record, written with one `write` and made durable with one `fdatasync`
//! before [`commit`](duet_core::store::LeaseStore::commit) returns. At open
//! the journal is replayed (latest record per lease wins, metadata
//! last-writer-wins) into memory; when it has grown to several times the
//! live data it is compacted into a fresh file that replaces it by rename.
//!
//! ## Map
//!
//! | module | contents |
//! |---|---|
//! | `journal` | [`JournalStore`]: open and replay, commit, compaction, the tail set aside |
//! | `format` | the file header and the record framing (CRC, length, payload) |
//!
//! ## What it never does
//!
//! * **Never uses bytes it cannot verify.** Every record carries a CRC; the
//!   first record that is incomplete, fails its CRC, is longer than the
//!   64 MiB limit or does not decode ends the replay, and so does a
//!   non-zero byte anywhere in the free space after a zero frame. It and everything
//!   after it (the *tail*) is left out of the loaded state.
//! * **Never loses bytes silently.** The tail is copied to
//!   `leases.journal.corrupt-<unix-seconds>` (fsynced) before the journal is
//!   cut, and [`Snapshot::warnings`](duet_core::store::Snapshot::warnings)
//!   names the journal, the offset, the size, the reason and the copy.
//!   A record damaged in the middle of the journal therefore sets aside
//!   the later, good records too: they are kept (in the copy) but not used,
//!   because a journal with a hole in it no longer tells which record is
//!   the latest for a lease.
//! * **Never overwrites what it does not recognise.** A file without the
//!   duet magic, of another format version or with a non-zero reserved
//!   field is [`StoreError::Corrupt`](duet_core::store::StoreError::Corrupt)
//!   and is left as it is.
//! * **Never shares the journal.** An exclusive `flock` on `leases.lock`
//!   (held while the store lives) makes a second open fail with an error
//!   naming that path. The kernel drops the lock when the process dies.
//! * **Never goes on after a failed write or fsync.** The partial record
//!   is cut back (best effort) and every later commit fails until the store
//!   is reopened and the file re-checked.
//!
//! ## Files (in the directory given to [`JournalStore::open`], mode 0700)
//!
//! | file | what |
//! |---|---|
//! | `leases.journal` | the journal |
//! | `leases.lock` | empty; holds the flock |
//! | `leases.journal.tmp` | a compaction (or creation) in progress; deleted, with a warning, if found at open |
//! | `leases.journal.corrupt-<secs>[-n]` | a tail that was set aside, byte for byte |
//!
//! ## Format (all integers little-endian)
//!
//! ```text
//! file    = header record* free?
//! free    = zero bytes to the end of the file (preallocated, 1 MiB steps;
//!           no record has len 0, so a zero frame is never a record)
//! header  = magic "DUETJNL\0" (8 bytes) | version u32 = 1 | reserved u32 = 0
//! record  = len u32 | crc u32 | payload (len bytes, len <= 64 MiB)
//! crc     = CRC-32 (IEEE, as crc32fast computes it) over the 4 len bytes, then the payload
//! payload = kind u8 | postcard(Body)
//!           kind 1 = a committed batch, kind 2 = a chunk of a compaction's snapshot
//! Body    = struct { leases: Vec<Lease>, meta: Vec<(String, Vec<u8>)> }
//! ```
//!
//! `Lease` is serialised by its serde derive (`duet_core::lease`), so a
//! change to that struct is a change of this format: bump the version.
//! Both record kinds replay the same way; the CRC also covers the length
//! field, so a damaged length is a CRC mismatch rather than a misframing.
//!
//! ## Crash safety
//!
//! * **Commit.** The record is written past the last good record (into
//!   preallocated zeros when they reach that far; otherwise the file first
//!   grows by zeros, written in the same commit) and `fdatasync`ed; only
//!   then does `commit` return. A crash before that
//!   leaves either nothing or a partial record at the end; a partial record
//!   fails the length or CRC check at the next open and is set aside. So
//!   after a crash the store holds exactly the batches whose commit
//!   returned, and possibly the one in flight, whole or not at all (a batch
//!   is one record, hence atomic).
//! * **Recovery.** The tail is copied and the copy fsynced (file and
//!   directory) *before* the journal is truncated and fsynced. A crash in
//!   between leaves the tail in the journal, to be found again.
//! * **Creation and compaction.** The new journal is written to
//!   `leases.journal.tmp`, fsynced, renamed over `leases.journal` (atomic
//!   on POSIX), and the directory is fsynced before any later commit is
//!   acknowledged. At every instant the name points at a complete journal,
//!   the old or the new; a leftover `.tmp` holds nothing that is not also
//!   in the journal, and is deleted at open (after taking the lock).
//! * **Directory.** Created with mode 0700; the parent of each directory
//!   created is fsynced so that the journal's path is as durable as its
//!   contents.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

mod format;
mod journal;

pub use journal::{JournalOptions, JournalStore};

/// Name of the journal file in the store's directory.
pub const JOURNAL_FILE: &str = "leases.journal";
/// Name of the lock file in the store's directory.
pub const LOCK_FILE: &str = "leases.lock";
/// Name of the file a compaction writes before renaming it over the journal.
pub const TMP_FILE: &str = "leases.journal.tmp";
/// Largest record payload, in bytes, written or accepted (64 MiB).
pub const MAX_RECORD_PAYLOAD: u32 = format::MAX_PAYLOAD;
