//! The announcements the scripts publish (`announce` in `lib.lua`), parsed.
//!
//! Wire form: `<kind><seq> <µs>\n` then each item as a u16 big-endian
//! length and its bytes. `kind` is `k` (these keys changed or went), `t`
//! (the entries carrying these tags went) or `c` (the bucket is being
//! cleared); `seq` is the bucket's counter after the change; `µs` is Redis'
//! clock when the script ran.

use crate::layout::keys::KeySpace;
use crate::scripts::SCRIPTS;
use crate::server::conn::ScriptCall;

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

/// The `announce.lua` call that announces changes made outside a script:
/// send it inside the same `MULTI` as the change (a `SET … GET` write
/// path), so the change and its announcement are one atomic step.
#[allow(dead_code)] // The MULTI write path (issue 10) is its first user.
pub(crate) fn announce_call(
    space: &KeySpace,
    bucket: u16,
    kind: Kind,
    items: &[&[u8]],
) -> ScriptCall {
    let mut call = ScriptCall::new(&SCRIPTS.announce, &[space.l1(bucket)]);
    call.arg(match kind {
        Kind::Keys => "k",
        Kind::Tags => "t",
        Kind::Clear => "c",
    });
    for item in items {
        call.arg(*item);
    }
    call
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
