//! The announcements the scripts publish (`announce` in `lib.lua`), parsed.
//!
//! Wire form: `<kind><seq> <µs>\n` then each item as a u16 big-endian
//! length and its bytes. `kind` is `k` (these keys changed or went), `t`
//! (the entries carrying these tags went) or `c` (the bucket is being
//! cleared); `seq` is the bucket's counter after the change (0 when sent
//! from a `MULTI`, which cannot know it: see [`queue`]); `µs` is Redis'
//! clock when the change was made.

use crate::layout::keys::KeySpace;

/// What an announcement says changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Entries (by key) were written, moved or deleted.
    Keys,
    /// Every entry carrying one of these tags was deleted.
    Tags,
    /// The whole bucket is being cleared.
    Clear,
}

/// One parsed announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Announcement {
    pub(crate) kind: Kind,
    /// The bucket's announcement counter after this change.
    pub(crate) seq: u64,
    /// Redis' clock (Unix µs) when the change was made.
    pub(crate) time_us: u64,
    /// Keys or tags.
    pub(crate) items: Vec<Vec<u8>>,
}

/// Parses a message; `None` for anything not in the form above (a message
/// published by someone else on the channel is ignored, and the sequence
/// check then sees it as missing, which only drops the bucket).
pub(crate) fn parse(msg: &[u8]) -> Option<Announcement> {
    let kind = match *msg.first()? {
        b'k' => Kind::Keys,
        b't' => Kind::Tags,
        b'c' => Kind::Clear,
        _ => return None,
    };
    let nl = msg.iter().position(|&b| b == b'\n')?;
    let head = std::str::from_utf8(&msg[1..nl]).ok()?;
    let (seq, time) = head.split_once(' ')?;
    let seq = seq.parse().ok()?;
    let time_us = time.parse().ok()?;
    let mut items = Vec::new();
    let mut rest = &msg[nl + 1..];
    while !rest.is_empty() {
        let len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
        let item = rest.get(2..2 + len)?;
        items.push(item.to_vec());
        rest = &rest[2 + len..];
    }
    Some(Announcement {
        kind,
        seq,
        time_us,
        items,
    })
}

/// This host's wall clock, Unix µs (the stamp of a transaction's
/// announcement, and the receiving side of every delivery lag).
pub(crate) fn wall_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Queues the announcement of a change made outside a script: `INCR` of
/// the bucket's counter and `SPUBLISH` of the message, for the caller's
/// `MULTI` (the change and its announcement then apply as one atomic
/// step). The sequence number is not known when the message is built, so
/// it says 0: a reader takes it for its last number plus one (the `INCR`
/// beside it is exactly that), and its periodic counter check still sees a
/// lost one. `time_us`: when the change was sent (Unix µs). Returns the
/// number of commands queued.
pub(crate) fn queue(
    pipe: &mut redis::Pipeline,
    space: &KeySpace,
    bucket: u16,
    kind: Kind,
    items: &[&[u8]],
    time_us: u64,
) -> usize {
    let channel = space.l1(bucket);
    let tag = match kind {
        Kind::Keys => 'k',
        Kind::Tags => 't',
        Kind::Clear => 'c',
    };
    let mut msg = format!("{tag}0 {time_us}\n").into_bytes();
    for item in items {
        // Keys and tags are at most 4096 bytes: their length fits a u16.
        let len = u16::try_from(item.len()).unwrap_or(u16::MAX);
        msg.extend_from_slice(&len.to_be_bytes());
        msg.extend_from_slice(&item[..usize::from(len)]);
    }
    pipe.cmd("INCR").arg(&channel);
    pipe.cmd("SPUBLISH").arg(&channel).arg(msg);
    2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse() {
        let mut msg = b"k17 1700000000123456\n".to_vec();
        for k in [&b"a"[..], b"key:\n2"] {
            msg.extend_from_slice(&u16::try_from(k.len()).unwrap().to_be_bytes());
            msg.extend_from_slice(k);
        }
        let a = parse(&msg).unwrap();
        assert_eq!(a.kind, Kind::Keys);
        assert_eq!(a.seq, 17);
        assert_eq!(a.time_us, 1_700_000_000_123_456);
        assert_eq!(a.items, vec![b"a".to_vec(), b"key:\n2".to_vec()]);
        let c = parse(b"c3 5\n").unwrap();
        assert_eq!((c.kind, c.seq, c.items.len()), (Kind::Clear, 3, 0));
    }

    #[test]
    fn a_multi_announcement_is_an_incr_and_a_message_without_its_number() {
        let space = KeySpace::new("ns", 1).unwrap();
        let mut pipe = redis::pipe();
        assert_eq!(
            queue(&mut pipe, &space, 0, Kind::Keys, &[b"a", b"bc"], 42),
            2
        );
        let packed = pipe.get_packed_pipeline();
        let text = String::from_utf8_lossy(&packed);
        assert!(text.contains("INCR\r\n$9\r\n{ns.0}:l1"), "{text}");
        let a = parse(b"k0 42\n\x00\x01a\x00\x02bc").unwrap();
        assert_eq!((a.seq, a.items.len()), (0, 2));
        let msg = b"k0 42\n\x00\x01a\x00\x02bc";
        assert!(packed.windows(msg.len()).any(|w| w == msg));
    }

    #[test]
    fn foreign_messages_are_ignored() {
        for m in [
            &b""[..],
            b"hello",
            b"k1\n",
            b"kx 1\n",
            b"k1 2\n\x00\x05ab",
            b"z1 2\n",
        ] {
            assert!(parse(m).is_none(), "{m:?}");
        }
    }
}
