//! Behaviour of `JournalStore` across reopen, damage and compaction.

use duet_core::lease::{BindingKey, Lease, LeaseKey, LeaseKind, LeaseState};
use duet_core::store::{Batch, LeaseStore, StoreError};
use duet_core::time::UnixTime;
use duet_store::{JournalOptions, JournalStore, JOURNAL_FILE, TMP_FILE};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::Ipv6Addr;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A temporary directory on the target's disk (not a tmpfs), so that
/// fsync is real.
fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn lease(n: u16, state: LeaseState, t: u64) -> Lease {
    let key = LeaseKey::address(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n));
    Lease {
        binding: Some(BindingKey {
            duid: vec![0, 3, 0, 1, (n >> 8) as u8, n as u8],
            kind: LeaseKind::Na,
            iaid: u32::from(n),
        }),
        valid_until: UnixTime(t + 3600),
        cltt: UnixTime(t),
        ..Lease::free(key, state, UnixTime(t))
    }
}

fn batch(leases: Vec<Lease>, meta: &[(&str, &[u8])]) -> Batch {
    Batch {
        leases,
        meta: meta.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect(),
    }
}

fn journal(dir: &Path) -> PathBuf {
    dir.join(JOURNAL_FILE)
}

/// Appends `bytes` to the journal file in `dir`, past whatever it holds.
fn append_to_journal(dir: &Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .open(journal(dir))
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

fn corrupt_copies(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("leases.journal.corrupt-")
        })
        .collect();
    v.sort();
    v
}

/// No preallocation: the file ends where the last record ends, so a test
/// can damage "the end" by cutting or appending.
fn unpadded() -> JournalOptions {
    JournalOptions {
        preallocate: 0,
        ..JournalOptions::default()
    }
}

/// Three commits without preallocation; returns the journal length after
/// each.
fn three_commits(dir: &Path) -> [u64; 3] {
    three_commits_with(dir, unpadded())
}

/// Three commits; returns the journal length after each.
fn three_commits_with(dir: &Path, opts: JournalOptions) -> [u64; 3] {
    let mut s = JournalStore::open_with(dir, opts).unwrap();
    s.commit(&batch(vec![lease(1, LeaseState::Active, 10)], &[("duid", b"A")]))
        .unwrap();
    let a = s.journal_len();
    s.commit(&batch(vec![lease(2, LeaseState::Active, 20)], &[]))
        .unwrap();
    let b = s.journal_len();
    s.commit(&batch(
        vec![
            lease(3, LeaseState::Active, 30),
            lease(1, LeaseState::Released, 31),
        ],
        &[],
    ))
    .unwrap();
    [a, b, s.journal_len()]
}

fn keys(s: &mut JournalStore) -> Vec<u16> {
    s.load()
        .unwrap()
        .leases
        .iter()
        .map(|l| l.key.prefix.addr().segments()[7])
        .collect()
}

#[test]
fn commits_survive_reopen() {
    let d = tempdir();
    let mut s = JournalStore::open(d.path()).unwrap();
    assert_eq!(s.load().unwrap(), Default::default(), "a new store is empty");
    s.commit(&batch(
        vec![lease(1, LeaseState::Active, 1), lease(2, LeaseState::Free, 1)],
        &[("duid", b"\x00\x01")],
    ))
    .unwrap();
    s.commit(&batch(
        vec![lease(3, LeaseState::Active, 2)],
        &[("state", b"normal")],
    ))
    .unwrap();
    let before = s.load().unwrap();
    assert_eq!(before.leases.len(), 3);
    drop(s);
    let mut s = JournalStore::open(d.path()).unwrap();
    let after = s.load().unwrap();
    assert_eq!(after, before);
    assert!(after.warnings.is_empty(), "{:?}", after.warnings);
}

#[test]
fn new_directory_is_created_private() {
    let d = tempdir();
    let dir = d.path().join("a/b/store");
    let s = JournalStore::open(&dir).unwrap();
    assert_eq!(s.path(), journal(&dir));
    assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(fs::metadata(journal(&dir)).unwrap().len(), 16);
    assert_eq!(s.journal_len(), 16);
}

#[test]
fn latest_record_per_lease_wins() {
    let d = tempdir();
    let mut s = JournalStore::open(d.path()).unwrap();
    s.commit(&batch(vec![lease(1, LeaseState::Free, 1)], &[]))
        .unwrap();
    s.commit(&batch(
        vec![lease(1, LeaseState::Active, 2), lease(2, LeaseState::Active, 2)],
        &[],
    ))
    .unwrap();
    // Within one batch, the later record wins too.
    s.commit(&batch(
        vec![
            lease(2, LeaseState::Expired, 3),
            lease(2, LeaseState::Released, 4),
        ],
        &[],
    ))
    .unwrap();
    let want = vec![lease(1, LeaseState::Active, 2), lease(2, LeaseState::Released, 4)];
    assert_eq!(s.load().unwrap().leases, want);
    drop(s);
    assert_eq!(JournalStore::open(d.path()).unwrap().load().unwrap().leases, want);
}

#[test]
fn meta_is_last_writer_wins() {
    let d = tempdir();
    let mut s = JournalStore::open(d.path()).unwrap();
    s.commit(&batch(vec![], &[("duid", b"one"), ("state", b"startup")]))
        .unwrap();
    s.commit(&batch(
        vec![],
        &[("state", b"normal"), ("state", b"partner-down")],
    ))
    .unwrap();
    drop(s);
    let snap = JournalStore::open(d.path()).unwrap().load().unwrap();
    let want: BTreeMap<String, Vec<u8>> = [
        ("duid".to_string(), b"one".to_vec()),
        ("state".to_string(), b"partner-down".to_vec()),
    ]
    .into();
    assert_eq!(snap.meta, want);
    assert!(snap.leases.is_empty());
}

#[test]
fn empty_batch_writes_nothing() {
    let d = tempdir();
    let mut s = JournalStore::open(d.path()).unwrap();
    s.commit(&Batch::default()).unwrap();
    assert_eq!(s.journal_len(), 16);
    assert_eq!(fs::metadata(journal(d.path())).unwrap().len(), 16);
}

#[test]
fn torn_last_record_is_set_aside_and_the_journal_heals() {
    let d = tempdir();
    let [_, b, c] = three_commits(d.path());
    let original = fs::read(journal(d.path())).unwrap();
    // A crash in the middle of writing the third record.
    let cut = b + (c - b) / 2;
    OpenOptions::new()
        .write(true)
        .open(journal(d.path()))
        .unwrap()
        .set_len(cut)
        .unwrap();

    let mut s = JournalStore::open(d.path()).unwrap();
    let snap = s.load().unwrap();
    assert_eq!(keys(&mut s), vec![1, 2], "the first two commits are intact");
    assert_eq!(
        snap.leases[0],
        lease(1, LeaseState::Active, 10),
        "the torn record is not used"
    );
    assert_eq!(snap.meta.get("duid"), Some(&b"A".to_vec()));
    assert_eq!(snap.warnings.len(), 1);
    let w = &snap.warnings[0];
    let copies = corrupt_copies(d.path());
    assert_eq!(copies.len(), 1);
    for part in [
        journal(d.path()).display().to_string(),
        format!("set aside {} bytes from offset {b}", cut - b),
        "incomplete record".to_string(),
        "crash during write?".to_string(),
        copies[0].display().to_string(),
    ] {
        assert!(w.contains(&part), "warning {w:?} lacks {part:?}");
    }
    assert_eq!(
        fs::read(&copies[0]).unwrap(),
        original[b as usize..cut as usize],
        "tail saved byte for byte"
    );
    assert_eq!(
        fs::metadata(journal(d.path())).unwrap().len(),
        b,
        "journal cut at the last good record"
    );

    // The next commit appends cleanly, and a reopen is clean.
    s.commit(&batch(vec![lease(4, LeaseState::Active, 40)], &[]))
        .unwrap();
    drop(s);
    let mut s = JournalStore::open(d.path()).unwrap();
    assert!(s.load().unwrap().warnings.is_empty());
    assert_eq!(keys(&mut s), vec![1, 2, 4]);
    assert_eq!(corrupt_copies(d.path()).len(), 1);
}

#[test]
fn torn_record_frame_is_set_aside() {
    let d = tempdir();
    let [_, b, _] = three_commits(d.path());
    OpenOptions::new()
        .write(true)
        .open(journal(d.path()))
        .unwrap()
        .set_len(b + 3)
        .unwrap();
    let mut s = JournalStore::open(d.path()).unwrap();
    let w = s.load().unwrap().warnings;
    assert!(w[0].contains("incomplete record frame: 3 of 8 bytes"), "{w:?}");
    assert_eq!(keys(&mut s), vec![1, 2]);
}

#[test]
fn garbage_appended_is_detected() {
    for garbage in [
        vec![0xa5u8; 14],
        b"\x04\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x02".to_vec(),
    ] {
        let d = tempdir();
        let [_, _, c] = three_commits(d.path());
        append_to_journal(d.path(), &garbage);
        let mut s = JournalStore::open(d.path()).unwrap();
        let snap = s.load().unwrap();
        assert_eq!(snap.warnings.len(), 1, "{garbage:?}");
        assert!(snap.warnings[0].contains(&format!("set aside {} bytes from offset {c}", garbage.len())));
        assert_eq!(keys(&mut s), vec![1, 2, 3]);
        assert_eq!(fs::read(&corrupt_copies(d.path())[0]).unwrap(), garbage);
    }
}

/// Zeros after the last record are free space by the format's definition
/// (preallocation writes them): not a tail, and the next record goes there.
#[test]
fn zeros_after_the_last_record_are_free_space() {
    let d = tempdir();
    let [_, _, c] = three_commits(d.path());
    append_to_journal(d.path(), &[0u8; 4096]);
    let mut s = JournalStore::open_with(d.path(), unpadded()).unwrap();
    assert!(s.load().unwrap().warnings.is_empty());
    assert_eq!(s.journal_len(), c);
    s.commit(&batch(vec![lease(4, LeaseState::Active, 40)], &[]))
        .unwrap();
    assert_eq!(
        fs::metadata(journal(d.path())).unwrap().len(),
        c + 4096,
        "the record went into the free space"
    );
    drop(s);
    let mut s = JournalStore::open(d.path()).unwrap();
    assert!(s.load().unwrap().warnings.is_empty());
    assert_eq!(keys(&mut s), vec![1, 2, 3, 4]);
}

#[test]
fn preallocated_space_is_written_once_and_reused() {
    let d = tempdir();
    let opts = JournalOptions {
        preallocate: 64 << 10,
        ..JournalOptions::default()
    };
    let [a, _, c] = three_commits_with(d.path(), opts);
    let bytes = fs::read(journal(d.path())).unwrap();
    assert_eq!(
        bytes.len() as u64,
        a + (64 << 10),
        "grown once, by the first record and the step"
    );
    assert!(bytes[c as usize..].iter().all(|&b| b == 0), "free space is zeros");
    let mut s = JournalStore::open_with(d.path(), opts).unwrap();
    assert!(s.load().unwrap().warnings.is_empty());
    assert_eq!(keys(&mut s), vec![1, 2, 3]);
    s.commit(&batch(vec![lease(4, LeaseState::Active, 40)], &[]))
        .unwrap();
    assert_eq!(
        fs::metadata(journal(d.path())).unwrap().len(),
        bytes.len() as u64,
        "a record that fits needs no growth"
    );
    drop(s);
    let mut s = JournalStore::open_with(d.path(), opts).unwrap();
    assert!(s.load().unwrap().warnings.is_empty());
    assert_eq!(keys(&mut s), vec![1, 2, 3, 4]);
}

/// Three commits into a journal preallocated in 4 KiB steps, then `bytes`
/// written `past` bytes after the last record (into the free space).
/// Returns the directory, the end of the last record, the file's length
/// and the options.
fn padded_with_bytes_at(past: u64, bytes: &[u8]) -> (tempfile::TempDir, u64, u64, JournalOptions) {
    let d = tempdir();
    let opts = JournalOptions {
        preallocate: 4096,
        ..JournalOptions::default()
    };
    let [_, _, c] = three_commits_with(d.path(), opts);
    let file_len = fs::metadata(journal(d.path())).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(journal(d.path()))
        .unwrap()
        .write_all_at(bytes, c + past)
        .unwrap();
    (d, c, file_len, opts)
}

/// A crash while writing a record into preallocated space leaves its start
/// before zeros: it is set aside like any torn record, and the free space
/// after it goes with it (the warning says how many trailing zeros).
#[test]
fn a_torn_record_in_preallocated_space_is_set_aside() {
    let torn = [0x30u8, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, 1, 7];
    let (d, c, file_len, opts) = padded_with_bytes_at(0, &torn);
    let mut s = JournalStore::open_with(d.path(), opts).unwrap();
    let w = s.load().unwrap().warnings;
    assert_eq!(w.len(), 1, "{w:?}");
    let zeros = file_len - c - torn.len() as u64;
    assert!(
        w[0].contains(&format!(
            "set aside {} bytes from offset {c} (the last {zeros} of them zero)",
            file_len - c
        )),
        "{w:?}"
    );
    let copy = fs::read(&corrupt_copies(d.path())[0]).unwrap();
    assert_eq!(&copy[..torn.len()], torn, "saved byte for byte");
    assert_eq!(copy.len() as u64, file_len - c);
    assert_eq!(keys(&mut s), vec![1, 2, 3]);
}

/// Non-zero bytes after a zero frame are not free space: what a zero frame
/// hides cannot be replayed (its start is lost), so it is set aside.
#[test]
fn non_zero_bytes_in_the_free_space_are_a_corrupt_tail() {
    let (d, c, file_len, opts) = padded_with_bytes_at(100, &[0xee; 5]);
    let mut s = JournalStore::open_with(d.path(), opts).unwrap();
    let w = s.load().unwrap().warnings;
    assert!(
        w[0].contains(&format!("non-zero byte at offset {}", c + 100)),
        "{w:?}"
    );
    assert!(
        w[0].contains(&format!("set aside {} bytes from offset {c}", file_len - c)),
        "{w:?}"
    );
    assert_eq!(keys(&mut s), vec![1, 2, 3]);
    drop(s);
    let mut s = JournalStore::open_with(d.path(), opts).unwrap();
    assert!(s.load().unwrap().warnings.is_empty());
}

#[test]
fn flipped_byte_in_last_record_fails_its_crc() {
    let d = tempdir();
    let [_, b, c] = three_commits(d.path());
    let mut bytes = fs::read(journal(d.path())).unwrap();
    bytes[(b + (c - b) / 2) as usize] ^= 0x10;
    fs::write(journal(d.path()), &bytes).unwrap();
    let mut s = JournalStore::open(d.path()).unwrap();
    let w = s.load().unwrap().warnings;
    assert!(w[0].contains("CRC mismatch"), "{w:?}");
    assert!(
        w[0].contains(&format!("set aside {} bytes from offset {b}", c - b)),
        "{w:?}"
    );
    assert_eq!(keys(&mut s), vec![1, 2]);
}

/// A damaged record in the middle ends the replay there: the later
/// records, although good, are set aside with it (kept byte for byte in
/// the copy, not used), because without the damaged record the journal no
/// longer says which record of a lease is the latest.
#[test]
fn flipped_byte_in_an_earlier_record_sets_aside_everything_after_it() {
    let d = tempdir();
    let [a, b, c] = three_commits(d.path());
    let mut bytes = fs::read(journal(d.path())).unwrap();
    bytes[(a + (b - a) / 2) as usize] ^= 0x01;
    fs::write(journal(d.path()), &bytes).unwrap();
    let mut s = JournalStore::open(d.path()).unwrap();
    let snap = s.load().unwrap();
    assert!(snap.warnings[0].contains("CRC mismatch"), "{:?}", snap.warnings);
    assert!(snap.warnings[0].contains(&format!("set aside {} bytes from offset {a}", c - a)));
    assert_eq!(keys(&mut s), vec![1], "only the first commit is used");
    assert_eq!(
        snap.leases[0],
        lease(1, LeaseState::Active, 10),
        "not the later record of lease 1"
    );
    assert_eq!(
        fs::read(&corrupt_copies(d.path())[0]).unwrap(),
        bytes[a as usize..]
    );
}

#[test]
fn a_damaged_length_field_is_a_crc_mismatch() {
    let d = tempdir();
    let [a, _, _] = three_commits(d.path());
    let mut bytes = fs::read(journal(d.path())).unwrap();
    bytes[a as usize] -= 1; // the second record's length
    fs::write(journal(d.path()), &bytes).unwrap();
    let mut s = JournalStore::open(d.path()).unwrap();
    assert!(s.load().unwrap().warnings[0].contains("CRC mismatch"));
    assert_eq!(keys(&mut s), vec![1]);
}

#[test]
fn an_absurd_record_length_is_a_corrupt_tail() {
    let d = tempdir();
    let [_, _, c] = three_commits(d.path());
    append_to_journal(d.path(), &[0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 1, 2, 3]);
    let mut s = JournalStore::open(d.path()).unwrap();
    let w = s.load().unwrap().warnings;
    assert!(w[0].contains("exceeds the limit"), "{w:?}");
    assert!(w[0].contains(&format!("from offset {c}")), "{w:?}");
    assert_eq!(keys(&mut s), vec![1, 2, 3]);
}

#[test]
fn unrecognised_header_is_an_error_and_the_file_is_untouched() {
    let mut v2 = b"DUETJNL\0\x02\x00\x00\x00\x00\x00\x00\x00".to_vec();
    v2.extend([1, 2, 3]);
    let cases: [(Vec<u8>, &str); 4] = [
        (
            b"SQLite format 3\0 and then some more bytes".to_vec(),
            "bad magic",
        ),
        (v2, "version 2"),
        (b"DUETJNL\0\x01\x00\x00\x00\x00\x00\x00\x01".to_vec(), "reserved"),
        (b"DUETJ".to_vec(), "shorter than the 16-byte"),
    ];
    for (bytes, why) in cases {
        let d = tempdir();
        fs::write(journal(d.path()), &bytes).unwrap();
        match JournalStore::open(d.path()) {
            Err(StoreError::Corrupt { path, reason }) => {
                assert_eq!(path, journal(d.path()).display().to_string());
                assert!(reason.contains(why), "{reason}");
            }
            other => panic!("{why}: {other:?}"),
        }
        assert_eq!(fs::read(journal(d.path())).unwrap(), bytes, "{why}");
        assert!(corrupt_copies(d.path()).is_empty());
    }
}

#[test]
fn a_second_open_of_the_same_directory_fails_while_the_first_lives() {
    let d = tempdir();
    let first = JournalStore::open(d.path()).unwrap();
    match JournalStore::open(d.path()) {
        Err(StoreError::Io { path, source }) => {
            assert_eq!(path, d.path().join("leases.lock").display().to_string());
            assert_eq!(source.kind(), std::io::ErrorKind::WouldBlock);
            let msg = StoreError::Io { path, source }.to_string();
            assert!(msg.contains("already open"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    drop(first);
    JournalStore::open(d.path()).unwrap();
}

fn small() -> JournalOptions {
    JournalOptions {
        compact_min_bytes: 4096,
        compact_ratio: 2,
        snapshot_chunk: 7,
        preallocate: 300,
    }
}

#[test]
fn compaction_keeps_the_content_and_shrinks_the_journal() {
    let d = tempdir();
    let mut s = JournalStore::open_with(
        d.path(),
        JournalOptions {
            compact_min_bytes: u64::MAX,
            ..small()
        },
    )
    .unwrap();
    for round in 0..20u64 {
        let leases = (0..30).map(|n| lease(n, LeaseState::Active, round)).collect();
        s.commit(&batch(leases, &[("round", &round.to_le_bytes()), ("duid", b"D")]))
            .unwrap();
    }
    let before = s.load().unwrap();
    let big = s.journal_len();
    s.compact().unwrap();
    assert!(s.journal_len() < big / 10, "{} vs {big}", s.journal_len());
    assert_eq!(fs::metadata(journal(d.path())).unwrap().len(), s.journal_len());
    assert!(!d.path().join(TMP_FILE).exists());
    assert_eq!(s.load().unwrap(), before);
    // Commits after a compaction go to the new file.
    s.commit(&batch(vec![lease(99, LeaseState::Free, 5)], &[]))
        .unwrap();
    let after = s.load().unwrap();
    drop(s);
    let mut s = JournalStore::open(d.path()).unwrap();
    assert_eq!(s.load().unwrap(), after);
    assert_eq!(after.leases.len(), 31);
}

#[test]
fn commit_compacts_past_the_threshold() {
    let d = tempdir();
    let mut s = JournalStore::open_with(d.path(), small()).unwrap();
    let mut max = 0;
    for round in 0..200u64 {
        s.commit(&batch(
            vec![lease((round % 5) as u16, LeaseState::Active, round)],
            &[],
        ))
        .unwrap();
        max = max.max(s.journal_len());
    }
    assert!(
        max <= 4096 + 200,
        "compaction kept the journal near its threshold: {max}"
    );
    let before = s.load().unwrap();
    assert_eq!(before.leases.len(), 5);
    drop(s);
    assert_eq!(
        JournalStore::open_with(d.path(), small())
            .unwrap()
            .load()
            .unwrap(),
        before
    );
}

#[test]
fn a_crash_during_compaction_leaves_the_old_journal_in_use() {
    let d = tempdir();
    three_commits(d.path());
    let original = fs::read(journal(d.path())).unwrap();
    // A crash before the rename: a half-written tmp file, or a complete one.
    for tmp in [
        b"DUETJNL\0\x01\x00\x00\x00\x00\x00\x00\x00\x10\x00".to_vec(),
        original[..16].to_vec(),
    ] {
        fs::write(d.path().join(TMP_FILE), &tmp).unwrap();
        let mut s = JournalStore::open(d.path()).unwrap();
        let snap = s.load().unwrap();
        assert_eq!(snap.warnings.len(), 1);
        assert!(snap.warnings[0].contains(TMP_FILE) && snap.warnings[0].contains("interrupted compaction"));
        assert!(!d.path().join(TMP_FILE).exists());
        assert_eq!(keys(&mut s), vec![1, 2, 3]);
        drop(s);
        assert_eq!(fs::read(journal(d.path())).unwrap(), original);
    }
    // A crash after the rename: the compacted journal is complete.
    let mut s = JournalStore::open(d.path()).unwrap();
    let before = s.load().unwrap();
    s.compact().unwrap();
    drop(s);
    assert_eq!(JournalStore::open(d.path()).unwrap().load().unwrap(), before);
}

#[derive(Debug, Clone)]
enum Op {
    Commit(Vec<(u16, u8, u64)>, Vec<(u8, u8)>),
    Reopen,
    Compact,
    /// A load without a reopen (from the open store).
    Load,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (
            prop::collection::vec((0u16..24, 0u8..7, 0u64..1000), 0..12),
            prop::collection::vec((0u8..4, any::<u8>()), 0..3),
        )
            .prop_map(|(l, m)| Op::Commit(l, m)),
        1 => Just(Op::Reopen),
        1 => Just(Op::Compact),
        1 => Just(Op::Load),
    ]
}

const STATES: [LeaseState; 7] = [
    LeaseState::Active,
    LeaseState::Expired,
    LeaseState::Released,
    LeaseState::Free,
    LeaseState::FreeBackup,
    LeaseState::Abandoned,
    LeaseState::Reset,
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any sequence of commits, reopens and compactions (with compaction
    /// also triggered by commits, the threshold being tiny) loads what a
    /// map holding the latest record per key and the latest meta holds.
    #[test]
    fn the_store_equals_a_model(ops in prop::collection::vec(op(), 1..40)) {
        let d = tempdir();
        let opts = JournalOptions { compact_min_bytes: 512, compact_ratio: 2, snapshot_chunk: 5, preallocate: 100 };
        let mut s = JournalStore::open_with(d.path(), opts).unwrap();
        let mut leases: HashMap<LeaseKey, Lease> = HashMap::new();
        let mut meta: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Commit(ls, ms) => {
                    let b = Batch {
                        leases: ls.iter().map(|&(n, st, t)| lease(n, STATES[st as usize], t)).collect(),
                        meta: ms.iter().map(|&(k, v)| (format!("k{k}"), vec![v; k as usize])).collect(),
                    };
                    s.commit(&b).unwrap();
                    for l in b.leases { leases.insert(l.key, l); }
                    meta.extend(b.meta);
                }
                Op::Reopen => {
                    drop(s);
                    s = JournalStore::open_with(d.path(), opts).unwrap();
                    prop_assert!(s.load().unwrap().warnings.is_empty());
                }
                Op::Compact => s.compact().unwrap(),
                Op::Load => {
                    let snap = s.load().unwrap();
                    let mut want: Vec<Lease> = leases.values().cloned().collect();
                    want.sort_by_key(|l| l.key);
                    prop_assert_eq!(snap.leases, want);
                    prop_assert_eq!(&snap.meta, &meta);
                }
            }
        }
        drop(s);
        let snap = JournalStore::open_with(d.path(), opts).unwrap().load().unwrap();
        let mut want: Vec<Lease> = leases.into_values().collect();
        want.sort_by_key(|l| l.key);
        prop_assert_eq!(snap.leases, want);
        prop_assert_eq!(snap.meta, meta);
        prop_assert!(snap.warnings.is_empty());
    }
}

#[test]
fn a_batch_too_large_for_one_record_is_refused_and_nothing_is_written() {
    let d = tempdir();
    let mut s = JournalStore::open(d.path()).unwrap();
    let huge = vec![0u8; duet_store::MAX_RECORD_PAYLOAD as usize];
    match s.commit(&batch(vec![lease(1, LeaseState::Active, 1)], &[("blob", &huge)])) {
        Err(StoreError::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::InvalidInput);
            assert!(
                source.to_string().contains("exceeds the journal's limit"),
                "{source}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.journal_len(), 16);
    assert!(s.load().unwrap().leases.is_empty());
    // Not an IO failure: the store stays usable.
    s.commit(&batch(vec![lease(1, LeaseState::Active, 1)], &[]))
        .unwrap();
}

#[test]
fn a_crash_while_creating_the_journal_leaves_a_tmp_that_is_cleaned_up() {
    let d = tempdir();
    fs::write(d.path().join(TMP_FILE), b"DUETJNL\0").unwrap();
    let mut s = JournalStore::open(d.path()).unwrap();
    let snap = s.load().unwrap();
    assert!(
        snap.warnings[0].contains("no journal existed yet"),
        "{:?}",
        snap.warnings
    );
    assert!(snap.leases.is_empty());
    assert!(!d.path().join(TMP_FILE).exists());
    assert_eq!(fs::metadata(journal(d.path())).unwrap().len(), 16);
}
