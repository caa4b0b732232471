//! The redo record that makes one write-out of the pending layer atomic on a
//! crash, without sled's batches.
//!
//! sled 0.34's `apply_batch` and transactions switch the whole process to a
//! global reader-writer lock, for good: from the first batch on, every sled
//! read and write takes it, a batch waits for a running flush (its fsync) to
//! end, and every reader queues behind the waiting batch. Plain inserts
//! never take it. So a write-out is plain inserts, made atomic like this:
//!
//! 1. its writes go to the redo tree first, in parts of at most
//!    [`PART_BYTES`], then a head naming the parts;
//! 2. then to the data tree, one insert or remove each;
//! 3. then the head is removed.
//!
//! sled recovers a prefix of its log (recovery stops at the first tear), so
//! after a crash either the head is absent and none of step 2 survived, or
//! the head and every part survived: opening the engine then writes the
//! parts' writes again ([`recover`]), which finishes the interrupted
//! write-out whatever part of step 2 had survived.

use super::{io, EngineError};

/// The sled tree of the redo record.
pub(super) const TREE: &str = "__ozmint_redo";

/// Most bytes of one part (sled stores values much larger than a quarter of
/// its 512 KiB segments as separate files).
const PART_BYTES: usize = 64 << 10;

const HEAD: &[u8] = b"head";

/// One write: the key and its new value (`None`: removed).
pub(super) type Entry = (Vec<u8>, Option<Vec<u8>>);

fn part_key(n: u32) -> Vec<u8> {
    let mut k = b"part".to_vec();
    k.extend_from_slice(&n.to_be_bytes());
    k
}

fn encode(buf: &mut Vec<u8>, (k, v): &Entry) {
    buf.extend_from_slice(&(k.len() as u32).to_be_bytes());
    buf.extend_from_slice(k);
    match v {
        Some(v) => {
            buf.push(1);
            buf.extend_from_slice(&(v.len() as u32).to_be_bytes());
            buf.extend_from_slice(v);
        }
        None => buf.push(0),
    }
}

/// The bytes [`encode`] writes for an entry.
fn encoded_len((k, v): &Entry) -> usize {
    4 + k.len() + 1 + v.as_ref().map_or(0, |v| 4 + v.len())
}

fn decode(mut buf: &[u8], out: &mut Vec<Entry>) -> Option<()> {
    fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = buf.split_at_checked(n)?;
        *buf = rest;
        Some(head)
    }
    fn len(buf: &mut &[u8]) -> Option<usize> {
        Some(u32::from_be_bytes(take(buf, 4)?.try_into().ok()?) as usize)
    }
    while !buf.is_empty() {
        let n = len(&mut buf)?;
        let k = take(&mut buf, n)?.to_vec();
        let v = match take(&mut buf, 1)? {
            [1] => {
                let n = len(&mut buf)?;
                Some(take(&mut buf, n)?.to_vec())
            }
            [0] => None,
            _ => return None,
        };
        out.push((k, v));
    }
    Some(())
}

/// Writes `entries` to `db`'s default tree, atomically on a crash (see the
/// module documentation). `seq` must differ from the previous write-out's.
pub(super) fn write_out(db: &::sled::Db, entries: &[Entry], seq: u64) -> Result<(), EngineError> {
    let redo = db.open_tree(TREE).map_err(io)?;
    let mut parts = 0u32;
    let mut buf = seq.to_be_bytes().to_vec();
    for e in entries {
        if buf.len() > 8 && buf.len() + encoded_len(e) > PART_BYTES {
            redo.insert(part_key(parts), std::mem::take(&mut buf))
                .map_err(io)?;
            parts += 1;
            buf = seq.to_be_bytes().to_vec();
        }
        encode(&mut buf, e);
    }
    redo.insert(part_key(parts), buf).map_err(io)?;
    let mut head = seq.to_be_bytes().to_vec();
    head.extend_from_slice(&(parts + 1).to_be_bytes());
    redo.insert(HEAD, head).map_err(io)?;
    apply(db, entries)?;
    redo.remove(HEAD).map_err(io)?;
    Ok(())
}

fn apply(db: &::sled::Db, entries: &[Entry]) -> Result<(), EngineError> {
    for (k, v) in entries {
        match v {
            Some(v) => db.insert(k, v.as_slice()).map(drop),
            None => db.remove(k).map(drop),
        }
        .map_err(io)?;
    }
    Ok(())
}

/// Finishes a write-out a crash interrupted, if any (at open); whether there
/// was one.
pub(super) fn recover(db: &::sled::Db) -> Result<bool, EngineError> {
    let redo = db.open_tree(TREE).map_err(io)?;
    let Some(head) = redo.get(HEAD).map_err(io)? else {
        return Ok(false);
    };
    let corrupt =
        || EngineError::Corrupt("the redo record of an interrupted write is damaged".into());
    let (seq, parts) = head.split_at_checked(8).ok_or_else(corrupt)?;
    let parts = u32::from_be_bytes(parts.try_into().map_err(|_| corrupt())?);
    let mut entries = Vec::new();
    for n in 0..parts {
        let part = redo.get(part_key(n)).map_err(io)?.ok_or_else(corrupt)?;
        let (part_seq, body) = part.split_at_checked(8).ok_or_else(corrupt)?;
        if part_seq != seq {
            return Err(corrupt());
        }
        decode(body, &mut entries).ok_or_else(corrupt)?;
    }
    apply(db, &entries)?;
    redo.remove(HEAD).map_err(io)?;
    db.flush().map_err(io)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(n: usize, value: usize) -> Vec<Entry> {
        (0..n)
            .map(|i| {
                let k = format!("k{i:05}").into_bytes();
                (k, (i % 3 != 0).then(|| vec![i as u8; value]))
            })
            .collect()
    }

    #[test]
    fn parts_round_trip() {
        for (n, value) in [(1, 0), (10, 100), (2000, 300), (3, 200_000)] {
            let want = entries(n, value);
            let mut buf = Vec::new();
            for e in &want {
                encode(&mut buf, e);
            }
            assert_eq!(buf.len(), want.iter().map(encoded_len).sum::<usize>());
            let mut got = Vec::new();
            decode(&buf, &mut got).expect("decodes");
            assert_eq!(got, want);
            assert!(decode(&buf[..buf.len() - 1], &mut Vec::new()).is_none());
        }
    }

    #[test]
    fn an_interrupted_write_out_is_finished_at_open() {
        let db = ::sled::Config::new().temporary(true).open().unwrap();
        let want = entries(2000, 300);
        // Steps 1 of a write-out (the redo record, several parts) and part of
        // step 2, then a "crash": what open finds.
        write_out(&db, &want[..1], 1).unwrap();
        let redo = db.open_tree(TREE).unwrap();
        assert!(
            redo.get(HEAD).unwrap().is_none(),
            "a finished write-out leaves no head"
        );
        db.insert(b"k00003", b"stale".to_vec()).unwrap();
        let seq = 2u64;
        let mut parts = 0u32;
        let mut buf = seq.to_be_bytes().to_vec();
        for (i, e) in want.iter().enumerate() {
            encode(&mut buf, e);
            if i % 700 == 699 {
                redo.insert(part_key(parts), std::mem::take(&mut buf))
                    .unwrap();
                parts += 1;
                buf = seq.to_be_bytes().to_vec();
            }
        }
        redo.insert(part_key(parts), buf).unwrap();
        let mut head = seq.to_be_bytes().to_vec();
        head.extend_from_slice(&(parts + 1).to_be_bytes());
        redo.insert(HEAD, head).unwrap();
        apply(&db, &want[..10]).unwrap();
        assert!(recover(&db).unwrap(), "an interrupted write-out is found");
        for (k, v) in &want {
            assert_eq!(db.get(k).unwrap().map(|v| v.to_vec()), *v);
        }
        assert!(!recover(&db).unwrap(), "and finished once");
        // A damaged record is reported, not applied.
        redo.insert(HEAD, vec![0u8; 3]).unwrap();
        assert!(matches!(recover(&db), Err(EngineError::Corrupt(_))));
    }
}
