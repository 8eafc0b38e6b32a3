//! Every Redis key name tagcache uses is built here, and nowhere else.
//!
//! The grammar (normative copy: `docs/redis-layout.md`):
//!
//! ```text
//! {<ns>}:meta                 hash    layout version and bucket count
//! {<ns>.<b>}:e:<key>          string  entry: header (codec, tags) + payload
//! {<ns>.<b>}:t:<tag>          zset    tag index: member = key, score = expiry (ms)
//! {<ns>.<b>}:x:<tag>          zset    snapshot of a tag index being invalidated
//! {<ns>.<b>}:l:<key>          string  load lease of a key: holder's token, PX expiry
//! {<ns>.<b>}:reg              zset    tag registry: member = tag, score <= next expiry
//! {<ns>.<b>}:inv              zset    in-flight invalidations: member = tag, score = heartbeat
//! {<ns>.<b>}:creg             zset    registry cut off by a namespace clear in progress
//! {<ns>.<b>}:fence            zset    `t<tag>` / `k<key>` -> last invalidation / delete (ms)
//! {<ns>.<b>}:l1               string  announcement counter; also the bucket's pub/sub channel
//! {<ns>}:legacy               hash    bulk legacy migration state (cursor, counts)
//! ```
//!
//! Legacy keys (the formats tagcache migrates from, `src/legacy`) are the
//! application's own names: rules render them from their patterns, and
//! [`is_tagcache_key`] keeps every rule away from the names above.
//!
//! `<ns>` is restricted to `[A-Za-z0-9_-]`, `<b>` is a decimal bucket number,
//! and `<key>` / `<tag>` are the caller's bytes, unescaped, always the last
//! segment. Because the prefix before them has a fixed shape that the caller
//! cannot influence (the namespace is validated, the kind is one of a fixed
//! set of tokens, and Redis takes the hash tag from the *first* `{...}`),
//! no byte sequence in a key or tag can reach another namespace, another
//! bucket, another kind or another hash slot: the mapping from
//! `(ns, bucket, kind, bytes)` to a Redis key is injective.

use std::io::Write;

use redis::{RedisWrite, ToRedisArgs};

use crate::error::{Error, InvalidInput};

/// The largest key, in bytes, that tagcache accepts.
pub const MAX_KEY_LEN: usize = 4096;
/// The largest tag, in bytes, that tagcache accepts (tags are length-prefixed
/// with a `u16` in the entry header).
pub const MAX_TAG_LEN: usize = 1024;
/// The longest namespace tagcache accepts.
pub const MAX_NAMESPACE_LEN: usize = 64;

/// Key names of one namespace.
#[derive(Debug, Clone)]
pub(crate) struct KeySpace {
    namespace: String,
    /// `{<ns>.<b>}:` for each bucket, built once.
    prefixes: Vec<Vec<u8>>,
}

impl KeySpace {
    /// Validates `namespace` and prepares the key prefixes of `buckets` buckets.
    pub(crate) fn new(namespace: &str, buckets: u16) -> Result<Self, Error> {
        validate_namespace(namespace)?;
        if buckets == 0 {
            return Err(InvalidInput::Buckets.into());
        }
        let prefixes = (0..buckets)
            .map(|b| format!("{{{namespace}.{b}}}:").into_bytes())
            .collect();
        Ok(Self {
            namespace: namespace.to_owned(),
            prefixes,
        })
    }

    /// The namespace these keys live in.
    pub(crate) fn namespace(&self) -> &str {
        &self.namespace
    }

    /// How many buckets the namespace is split into.
    pub(crate) fn buckets(&self) -> u16 {
        // The constructor makes 1..=u16::MAX prefixes.
        u16::try_from(self.prefixes.len()).unwrap_or(u16::MAX)
    }

    /// The bucket of an entry: CRC16 (XMODEM, as Redis Cluster uses) of the
    /// key bytes, modulo the bucket count. An entry and all its index edges
    /// live in its bucket, so one script can change them atomically even on
    /// Redis Cluster.
    pub(crate) fn bucket_of(&self, key: &[u8]) -> u16 {
        let n = self.buckets();
        if n == 1 {
            0
        } else {
            crc16(key) % n
        }
    }

    fn with_kind(&self, bucket: u16, kind: &'static [u8], rest: &[u8]) -> Vec<u8> {
        self.name(bucket, kind, rest).to_vec()
    }

    /// `{<ns>.<b>}:<kind><rest>`, unassembled: every key name of a bucket.
    fn name<'a>(&'a self, bucket: u16, kind: &'static [u8], rest: &'a [u8]) -> Name<'a> {
        Name {
            prefix: &self.prefixes[usize::from(bucket)],
            kind,
            rest,
        }
    }

    /// `{<ns>.<b>}:e:<key>`: the entry string.
    pub(crate) fn entry(&self, bucket: u16, key: &[u8]) -> Vec<u8> {
        self.entry_name(bucket, key).to_vec()
    }

    /// The entry name of [`KeySpace::entry`] as one command argument,
    /// written straight into the command (the read path: no `Vec` per
    /// call, the key bytes copied once).
    pub(crate) fn entry_name<'a>(&'a self, bucket: u16, key: &'a [u8]) -> Name<'a> {
        self.name(bucket, b"e:", key)
    }

    /// `{<ns>.<b>}:l:<key>`: the load lease of a key (string: the holder's
    /// token, with a PX expiry), taken by a read-through miss so one
    /// loader runs per key across processes.
    pub(crate) fn lease(&self, bucket: u16, key: &[u8]) -> Vec<u8> {
        self.with_kind(bucket, b"l:", key)
    }

    /// `{<ns>.<b>}:t:<tag>`: the tag index of one bucket.
    pub(crate) fn tag(&self, bucket: u16, tag: &[u8]) -> Vec<u8> {
        self.tag_name(bucket, tag).to_vec()
    }

    /// The index name of [`KeySpace::tag`] as one command argument,
    /// written straight into the command (the write transaction).
    pub(crate) fn tag_name<'a>(&'a self, bucket: u16, tag: &'a [u8]) -> Name<'a> {
        self.name(bucket, b"t:", tag)
    }

    /// `{<ns>.<b>}:t:`, what every tag index key of a bucket starts with:
    /// `tag(b, T)` is this followed by `T` (`drop.lua` takes a declared
    /// index's tag from its key, less this prefix).
    pub(crate) fn tag_prefix(&self, bucket: u16) -> Vec<u8> {
        self.tag(bucket, b"")
    }

    /// `{<ns>.<b>}:x:<tag>`: the snapshot an invalidation works through.
    pub(crate) fn snapshot(&self, bucket: u16, tag: &[u8]) -> Vec<u8> {
        self.with_kind(bucket, b"x:", tag)
    }

    /// `{<ns>.<b>}:reg`: every tag index of the bucket, scored by a lower
    /// bound of its next member expiry; the sweep walks it instead of SCAN.
    pub(crate) fn registry(&self, bucket: u16) -> Vec<u8> {
        self.with_kind(bucket, b"reg", b"")
    }

    /// `{<ns>.<b>}:inv`: invalidations in flight, scored by heartbeat, so a
    /// crashed invalidation is finished by the next one or by the sweep.
    pub(crate) fn inflight(&self, bucket: u16) -> Vec<u8> {
        self.with_kind(bucket, b"inv", b"")
    }

    /// `{<ns>.<b>}:creg`: the registry a namespace clear cut off (renamed
    /// from `reg`) and is working through, index by index.
    pub(crate) fn clear_registry(&self, bucket: u16) -> Vec<u8> {
        self.with_kind(bucket, b"creg", b"")
    }

    /// `{<ns>.<b>}:fence`: when each tag was last invalidated and each key
    /// last deleted (`t<tag>` / `k<key>` -> ms), so a read-through write
    /// that began before cannot store data older than that.
    pub(crate) fn fence(&self, bucket: u16) -> Vec<u8> {
        self.with_kind(bucket, b"fence", b"")
    }

    /// `{<ns>.<b>}:l1`: the bucket's announcement counter (`INCR`ed by
    /// every script that changes an entry of the bucket) and, under the same
    /// name, the shard channel the change is announced on (`SPUBLISH`), so
    /// in-process L1 tiers drop what changed (docs/l1.md). A channel is not
    /// a key, but naming it after one keeps it in the bucket's hash slot,
    /// which a script's `SPUBLISH` on a cluster requires.
    pub(crate) fn l1(&self, bucket: u16) -> Vec<u8> {
        self.with_kind(bucket, b"l1", b"")
    }

    /// `{<ns>}:meta`: layout version and bucket count of the namespace.
    pub(crate) fn meta(&self) -> Vec<u8> {
        format!("{{{}}}:meta", self.namespace).into_bytes()
    }

    /// `{<ns>}:legacy`: the state of a bulk legacy-key migration (hash:
    /// SCAN cursor, rules fingerprint, counts), so a pass interrupted by a
    /// crash or Ctrl-C resumes where it stopped; deleted when it completes.
    pub(crate) fn legacy_state(&self) -> Vec<u8> {
        format!("{{{}}}:legacy", self.namespace).into_bytes()
    }
}

/// The version of the on-Redis layout this code writes and reads
/// (recorded in `{<ns>}:meta`; `docs/redis-layout.md` describes it).
/// A namespace of another version is refused at build.
pub const LAYOUT_VERSION: u32 = 2;

/// Marks tags (and group members) tagcache reserves for itself; user tags
/// and keys may not start with this byte.
pub(crate) const RESERVED_TAG: u8 = 0;

/// The second byte of a reserved prefix tag (`\0p<encoded prefix>`).
pub(crate) const PREFIX_KIND: u8 = b'p';

/// The second byte of a hash group's member (`\0g<encoded name:owner>`).
pub(crate) const GROUP_KIND: u8 = b'g';

/// The reserved tag of entries and groups that would otherwise have no
/// index edge at all (a flat key without tags): every entry is then in at
/// least one index, which is what lets a namespace clear find it by
/// walking the registry of indexes.
pub(crate) const ALL_TAG: &[u8] = b"\0a";

/// The field of a group hash that holds the group's tags (fields of
/// group members never start with byte 0).
pub(crate) const GROUP_TAGS_FIELD: &[u8] = b"\0tags";

/// The reserved prefix tag of an encoded path prefix: `\0p<prefix>`.
pub(crate) fn prefix_tag(encoded_prefix: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(encoded_prefix.len() + 2);
    t.extend_from_slice(&[RESERVED_TAG, PREFIX_KIND]);
    t.extend_from_slice(encoded_prefix);
    t
}

/// The index member (and entry key) of a hash group, from its encoded
/// `name:owner` id: `\0g<id>`.
pub(crate) fn group_member(encoded_id: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(encoded_id.len() + 2);
    m.extend_from_slice(&[RESERVED_TAG, GROUP_KIND]);
    m.extend_from_slice(encoded_id);
    m
}

/// Whether an index member is a hash group's (its entry key holds a hash,
/// its tags in [`GROUP_TAGS_FIELD`]): the one kind of member that starts
/// with [`RESERVED_TAG`]. lib.lua's `tag_bytes` decides the same way.
pub(crate) fn is_group_member(member: &[u8]) -> bool {
    member.first() == Some(&RESERVED_TAG)
}

/// The member of `{<ns>.<b>}:inv` that stands for a namespace clear in
/// progress in that bucket (tags never start with byte 0 followed by `c`).
pub(crate) const CLEAR_MARKER: &[u8] = b"\0c";

/// Field of `{<ns>}:meta` set (to the Unix ms of completion) when a bulk
/// legacy migration has completed: from then on no listing or clear falls
/// back to `SCAN` for legacy keys.
pub(crate) const META_LEGACY_DONE: &str = "legacy_done";

/// Whether `key` has the shape of a tagcache key of any namespace:
/// `{<ns>}:…` or `{<ns>.<digits>}:…`. Legacy rules never match such keys,
/// so no rule, however broad, can move or delete tagcache's own data.
pub(crate) fn is_tagcache_key(key: &[u8]) -> bool {
    let Some(rest) = key.strip_prefix(b"{") else {
        return false;
    };
    let Some(close) = rest.iter().position(|&b| b == b'}') else {
        return false;
    };
    if rest.get(close + 1) != Some(&b':') {
        return false;
    }
    let tag = &rest[..close];
    let (ns, bucket) = match tag.iter().position(|&b| b == b'.') {
        Some(dot) => (&tag[..dot], Some(&tag[dot + 1..])),
        None => (tag, None),
    };
    let ns_ok = !ns.is_empty()
        && ns.len() <= MAX_NAMESPACE_LEN
        && ns
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-');
    let bucket_ok = bucket.is_none_or(|b| !b.is_empty() && b.iter().all(u8::is_ascii_digit));
    ns_ok && bucket_ok
}

/// Checks a namespace: 1 to 64 characters of `[A-Za-z0-9_-]`.
pub(crate) fn validate_namespace(ns: &str) -> Result<(), Error> {
    let ok = !ns.is_empty()
        && ns.len() <= MAX_NAMESPACE_LEN
        && ns
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
    if ok {
        Ok(())
    } else {
        Err(InvalidInput::Namespace(ns.to_owned()).into())
    }
}

/// A key name in three parts (bucket prefix, kind, caller's bytes) that
/// becomes one Redis argument without being assembled first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Name<'a> {
    prefix: &'a [u8],
    kind: &'static [u8],
    rest: &'a [u8],
}

impl Name<'_> {
    /// Length of the name in bytes.
    pub(crate) fn len(&self) -> usize {
        self.prefix.len() + self.kind.len() + self.rest.len()
    }

    /// The name as one buffer.
    pub(crate) fn to_vec(self) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.len());
        k.extend_from_slice(self.prefix);
        k.extend_from_slice(self.kind);
        k.extend_from_slice(self.rest);
        k
    }
}

impl ToRedisArgs for Name<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + RedisWrite,
    {
        let mut w = out.writer_for_next_arg();
        // Writing into a command's (or a Vec's) buffer cannot fail.
        let _ = w
            .write_all(self.prefix)
            .and_then(|()| w.write_all(self.kind))
            .and_then(|()| w.write_all(self.rest));
    }
}

/// Checks a cache key: 1 to [`MAX_KEY_LEN`] bytes, any bytes.
pub(crate) fn validate_key(key: &[u8]) -> Result<(), Error> {
    if key.is_empty() {
        return Err(InvalidInput::EmptyKey.into());
    }
    if key.len() > MAX_KEY_LEN {
        return Err(InvalidInput::KeyTooLong(key.len(), MAX_KEY_LEN).into());
    }
    if key[0] == RESERVED_TAG {
        return Err(InvalidInput::ReservedKey.into());
    }
    Ok(())
}

/// Checks a tag: 1 to [`MAX_TAG_LEN`] bytes, any bytes.
pub(crate) fn validate_tag(tag: &[u8]) -> Result<(), Error> {
    if tag.is_empty() {
        return Err(InvalidInput::EmptyTag.into());
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(InvalidInput::TagTooLong(tag.len(), MAX_TAG_LEN).into());
    }
    if tag[0] == RESERVED_TAG {
        return Err(InvalidInput::ReservedTag.into());
    }
    Ok(())
}

/// CRC16/XMODEM, the checksum Redis Cluster uses for hash slots.
pub(crate) fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_redis_reference_value() {
        // The Redis Cluster spec gives CRC16("123456789") = 0x31C3.
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }

    #[test]
    fn key_names_follow_the_layout() {
        let ks = KeySpace::new("app", 1).unwrap();
        assert_eq!(ks.entry(0, b"k"), b"{app.0}:e:k");
        assert_eq!(ks.tag(0, b"product:42"), b"{app.0}:t:product:42");
        assert_eq!(ks.snapshot(0, b"t"), b"{app.0}:x:t");
        assert_eq!(ks.registry(0), b"{app.0}:reg");
        assert_eq!(ks.inflight(0), b"{app.0}:inv");
        assert_eq!(ks.fence(0), b"{app.0}:fence");
        assert_eq!(ks.clear_registry(0), b"{app.0}:creg");
        assert_eq!(ks.l1(0), b"{app.0}:l1");
        assert_eq!(ks.meta(), b"{app}:meta");
        assert_eq!(ks.legacy_state(), b"{app}:legacy");
    }

    #[test]
    fn entry_names_written_in_place_are_the_entry_key() {
        let ks = KeySpace::new("app", 4).unwrap();
        for key in [&b"k"[..], b"}:t:{other.0}", &[0xff; 300]] {
            let b = ks.bucket_of(key);
            let name = ks.entry_name(b, key);
            assert_eq!(name.len(), ks.entry(b, key).len());
            let mut in_place = redis::Cmd::with_capacity(2, 3 + name.len());
            in_place.arg("GET").arg(name);
            assert_eq!(
                in_place.get_packed_command(),
                redis::cmd("GET").arg(ks.entry(b, key)).get_packed_command()
            );
        }
    }

    #[test]
    fn tagcache_keys_are_recognised() {
        let ks = KeySpace::new("app", 4).unwrap();
        assert!(is_tagcache_key(&ks.entry(3, b"k")));
        assert!(is_tagcache_key(&ks.meta()));
        assert!(is_tagcache_key(&ks.legacy_state()));
        assert!(is_tagcache_key(b"{other-ns_2.17}:t:x"));
        for k in [
            &b"id-1-identity-x"[..],
            b"{app}",
            b"{app}x",
            b"{a b}:x",
            b"{app.}:x",
            b"{app.1x}:x",
            b"{}:x",
        ] {
            assert!(!is_tagcache_key(k), "{}", String::from_utf8_lossy(k));
        }
    }

    #[test]
    fn braces_and_separators_in_keys_stay_in_their_segment() {
        let ks = KeySpace::new("app", 4).unwrap();
        let evil = b"}:t:{other.0}";
        let b = ks.bucket_of(evil);
        let name = ks.entry(b, evil);
        // The hash tag is still the namespace's bucket: the first {...}.
        let prefix = format!("{{app.{b}}}:e:");
        assert!(name.starts_with(prefix.as_bytes()));
        assert_eq!(&name[prefix.len()..], evil);
    }

    #[test]
    fn namespaces_are_validated() {
        assert!(KeySpace::new("", 1).is_err());
        assert!(KeySpace::new("a}b", 1).is_err());
        assert!(KeySpace::new("a.b", 1).is_err());
        assert!(KeySpace::new(&"x".repeat(65), 1).is_err());
        assert!(KeySpace::new("my-app_2", 1).is_ok());
        assert!(KeySpace::new("a", 0).is_err());
    }

    #[test]
    fn buckets_spread_keys() {
        let ks = KeySpace::new("app", 16).unwrap();
        let mut seen = [0u32; 16];
        for i in 0..1600 {
            seen[usize::from(ks.bucket_of(format!("key:{i}").as_bytes()))] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }
}
