//! The entry format: a small header, the entry's tags, then the payload.
//!
//! ```text
//! byte 0      format version (1)
//! byte 1      flags: bit 0 = payload is LZ4 block (size-prepended, u32 LE);
//!             bit 1 = a fresh-until time follows the tag section;
//!             bit 2 = a TTL field follows (after fresh-until, if any);
//!             bits 4-7 = codec (0 = raw bytes, 1 = MessagePack)
//! bytes 2..6  u32 big-endian: length L of the tag section
//! L bytes     tag section: for each tag, u16 big-endian length + tag bytes
//! 8 bytes     only when flag bit 1 is set (entries with a grace period):
//!             u64 big-endian ms (Redis clock) until which the entry is
//!             fresh; it stays stored, stale, until its Redis expiry
//! 8 bytes     only when flag bit 2 is set (entries written with eager
//!             refresh): u64 big-endian, the entry's TTL in ms, so a
//!             reader knows which fraction of it has passed
//! rest        payload
//! ```
//!
//! The tags travel inside the value so that an entry and its reverse edges
//! are one Redis key: they are written, expire and are evicted together, and
//! the scripts read an entry's tags with one `GETRANGE` of its first 256
//! bytes (a second only for a longer tag section; never the whole value).
//! Other languages read an entry by skipping `6 + L` bytes.

use std::borrow::Cow;

use bytes::Bytes;
use serde::{de::DeserializeOwned, Serialize};

use crate::error::{Error, ErrorKind, InvalidInput};

/// Current entry format version (byte 0 of every entry).
pub(crate) const FORMAT_VERSION: u8 = 1;
/// Length of the fixed part of the header.
pub(crate) const HEADER_LEN: usize = 6;

const FLAG_LZ4: u8 = 0b0000_0001;
const FLAG_FRESH_UNTIL: u8 = 0b0000_0010;
const FLAG_TTL: u8 = 0b0000_0100;
/// Bytes of the TTL field.
const TTL_LEN: usize = 8;
/// Bytes of the fresh-until field.
pub(crate) const FRESH_UNTIL_LEN: usize = 8;
const CODEC_SHIFT: u8 = 4;

/// How the payload bytes were produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    /// The caller's bytes, untouched.
    Raw = 0,
    /// A serde value encoded as MessagePack.
    MsgPack = 1,
}

/// When values are compressed.
///
/// The default compresses payloads of 1 KiB or more with LZ4 and keeps the
/// compressed form only when it is smaller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    threshold: Option<usize>,
}

impl Compression {
    /// Never compress.
    pub const fn none() -> Self {
        Self { threshold: None }
    }

    /// Compress payloads of at least `bytes` bytes with LZ4.
    pub const fn lz4_above(bytes: usize) -> Self {
        Self {
            threshold: Some(bytes),
        }
    }
}

/// Payloads of at least this many bytes are compressed by default.
pub(crate) const DEFAULT_COMPRESSION_THRESHOLD: usize = 1024;

impl Default for Compression {
    fn default() -> Self {
        Self::lz4_above(DEFAULT_COMPRESSION_THRESHOLD)
    }
}

/// Serializes a typed value to MessagePack.
pub(crate) fn to_msgpack<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    rmp_serde::to_vec_named(value)
        .map_err(|e| Error::with_source(ErrorKind::Codec, "cannot encode value", e))
}

/// Deserializes a typed value from MessagePack.
pub(crate) fn from_msgpack<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    rmp_serde::from_slice(bytes)
        .map_err(|e| Error::with_source(ErrorKind::Codec, "cannot decode value", e))
}

/// Deserializes a raw payload (an entry written with `set_bytes`, or a
/// legacy key's value): only types that accept a byte buffer read it
/// (`serde_bytes::ByteBuf`, `rmpv::Value` as `Binary`, ...: types that
/// call `deserialize_bytes`, `deserialize_byte_buf` or `deserialize_any`), so a caller
/// that does not know how an entry was written reads either kind with one
/// typed read; any other type gets `refusal`.
pub(crate) fn from_raw<T: DeserializeOwned>(bytes: &[u8], refusal: &str) -> Result<T, Error> {
    T::deserialize(RawPayload(bytes)).map_err(|_| Error::new(ErrorKind::Codec, refusal))
}

/// Deserializes a payload written with `codec` (see [`from_raw`]).
pub(crate) fn from_payload<T: DeserializeOwned>(codec: Codec, bytes: &[u8]) -> Result<T, Error> {
    match codec {
        Codec::MsgPack => from_msgpack(bytes),
        Codec::Raw => from_raw(bytes, "entry holds raw bytes; read it with get_bytes"),
    }
}

/// A deserializer that offers its bytes to types asking for bytes or for
/// anything (`deserialize_any`), and refuses every other type (a `String`
/// does not read a raw entry even when its bytes are UTF-8).
struct RawPayload<'a>(&'a [u8]);

/// The `deserialize_*` methods [`RawPayload`] refuses.
/// (Each name is followed by the types of the arguments it takes before
/// the visitor.)
macro_rules! refuse_raw {
    ($($name:ident($($arg:ty),*))*) => {$(
        fn $name<V: serde::de::Visitor<'de>>(
            self,
            $(_: $arg,)*
            _: V,
        ) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("raw bytes"))
        }
    )*};
}

impl<'de> serde::Deserializer<'de> for RawPayload<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        v.visit_bytes(self.0)
    }

    fn deserialize_bytes<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        v.visit_bytes(self.0)
    }

    fn deserialize_byte_buf<V: serde::de::Visitor<'de>>(
        self,
        v: V,
    ) -> Result<V::Value, Self::Error> {
        v.visit_bytes(self.0)
    }

    refuse_raw! {
        deserialize_bool() deserialize_i8() deserialize_i16() deserialize_i32()
        deserialize_i64() deserialize_u8() deserialize_u16() deserialize_u32()
        deserialize_u64() deserialize_f32() deserialize_f64() deserialize_char()
        deserialize_str() deserialize_string() deserialize_option() deserialize_unit()
        deserialize_seq() deserialize_map() deserialize_identifier()
        deserialize_ignored_any()
        deserialize_unit_struct(&'static str)
        deserialize_newtype_struct(&'static str)
        deserialize_tuple(usize)
        deserialize_tuple_struct(&'static str, usize)
        deserialize_struct(&'static str, &'static [&'static str])
        deserialize_enum(&'static str, &'static [&'static str])
    }
}

/// Builds the stored bytes of an entry.
///
/// With `graced`, an 8-byte fresh-until placeholder follows the tags; the
/// write script fills it in with Redis' clock. With `ttl_ms`, the TTL
/// field follows (eager refresh reads it).
pub(crate) fn encode_entry(
    tags: &[Vec<u8>],
    payload: &[u8],
    codec: Codec,
    compression: Compression,
    graced: bool,
    ttl_ms: Option<u64>,
) -> Vec<u8> {
    let section_len: usize = tags.iter().map(|t| 2 + t.len()).sum();
    let compressed = match compression.threshold {
        Some(min) if payload.len() >= min => {
            let c = lz4_flex::compress_prepend_size(payload);
            (c.len() < payload.len()).then_some(c)
        }
        _ => None,
    };
    let body: &[u8] = compressed.as_deref().unwrap_or(payload);
    let mut out = Vec::with_capacity(HEADER_LEN + section_len + body.len());
    out.push(FORMAT_VERSION);
    let mut flags = (codec as u8) << CODEC_SHIFT;
    if compressed.is_some() {
        flags |= FLAG_LZ4;
    }
    if graced {
        flags |= FLAG_FRESH_UNTIL;
    }
    if ttl_ms.is_some() {
        flags |= FLAG_TTL;
    }
    out.push(flags);
    // Tag count and length are validated by the caller (u16 tag lengths,
    // bounded tag counts), so the section always fits in a u32.
    out.extend_from_slice(&u32::try_from(section_len).unwrap_or(u32::MAX).to_be_bytes());
    for t in tags {
        out.extend_from_slice(&u16::try_from(t.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(t);
    }
    if graced {
        out.extend_from_slice(&[0; FRESH_UNTIL_LEN]);
    }
    if let Some(ttl) = ttl_ms {
        out.extend_from_slice(&ttl.to_be_bytes());
    }
    out.extend_from_slice(body);
    out
}

/// A stored entry, split into its parts.
#[derive(Debug)]
pub(crate) struct Decoded<'a> {
    pub(crate) codec: Codec,
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) tag_section: &'a [u8],
    /// Until when (Redis ms) an entry with a grace period is fresh.
    pub(crate) fresh_until: Option<u64>,
    /// The TTL (ms) of an entry written with eager refresh.
    pub(crate) ttl_ms: Option<u64>,
    compressed: bool,
    body: &'a [u8],
}

impl Decoded<'_> {
    /// The payload, decompressed; refuses to inflate beyond `max_len` bytes.
    pub(crate) fn payload(&self, max_len: usize) -> Result<Vec<u8>, Error> {
        if !self.compressed {
            return Ok(self.body.to_vec());
        }
        inflate(self.body, max_len)
    }

    /// Runs `f` on the payload: borrowed in place, or decompressed first.
    pub(crate) fn with_payload<R>(
        &self,
        max_len: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, Error> {
        if self.compressed {
            Ok(f(&inflate(self.body, max_len)?))
        } else {
            Ok(f(self.body))
        }
    }

    /// Where the payload sits in the decoded buffer, to take it out of
    /// that buffer once this borrow of it ends ([`Body::take`]).
    pub(crate) fn body(&self, whole: &[u8]) -> Body {
        Body {
            start: whole.len().saturating_sub(self.body.len()),
            compressed: self.compressed,
        }
    }
}

/// The place of an entry's payload in its stored bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Body {
    start: usize,
    compressed: bool,
}

impl Body {
    /// Whether the payload is LZ4-compressed.
    pub(crate) fn is_compressed(self) -> bool {
        self.compressed
    }

    /// Where the payload starts.
    pub(crate) fn start(self) -> usize {
        self.start
    }

    /// The payload of `whole` (the bytes this was found in), reusing that
    /// buffer: a read's payload is moved to its front rather than copied
    /// into a new allocation. A header and tag section longer than the
    /// payload are not kept alive in the caller's value: then the payload
    /// is copied out (cheap, it is the shorter part).
    pub(crate) fn take(self, mut whole: Vec<u8>, max_len: usize) -> Result<Vec<u8>, Error> {
        let body = whole.get(self.start..).unwrap_or_default();
        if self.compressed {
            return inflate(body, max_len);
        }
        if self.start > body.len() {
            return Ok(body.to_vec());
        }
        whole.drain(..self.start);
        Ok(whole)
    }

    /// The payload of `whole` (the bytes this was found in), borrowed in
    /// place unless compressed.
    pub(crate) fn of(self, whole: &[u8], max_len: usize) -> Result<Cow<'_, [u8]>, Error> {
        let body = whole.get(self.start..).unwrap_or_default();
        if self.compressed {
            return inflate(body, max_len).map(Cow::Owned);
        }
        Ok(Cow::Borrowed(body))
    }

    /// The payload of `whole` as a slice sharing its buffer (no copy),
    /// unless compressed.
    pub(crate) fn shared(self, whole: &Bytes, max_len: usize) -> Result<Bytes, Error> {
        if self.compressed {
            return self.of(whole, max_len).map(|p| Bytes::from(p.into_owned()));
        }
        Ok(whole.slice(self.start.min(whole.len())..))
    }

    /// The same place in a buffer that has `prefix` more bytes in front.
    pub(crate) fn after(self, prefix: usize) -> Self {
        Self {
            start: self.start + prefix,
            ..self
        }
    }
}

/// Decompresses an LZ4 payload (size-prepended); refuses to inflate beyond
/// `max_len` bytes.
fn inflate(body: &[u8], max_len: usize) -> Result<Vec<u8>, Error> {
    let size = body
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(|| corrupt("truncated compressed payload"))?;
    if size > max_len {
        return Err(Error::from(InvalidInput::ValueTooLarge(size, max_len)));
    }
    lz4_flex::decompress_size_prepended(body)
        .map_err(|e| Error::with_source(ErrorKind::Codec, "corrupt compressed payload", e))
}

/// The error for an entry key whose contents are not a tagcache entry, as
/// the scripts report it (they only see that it is malformed, not why).
pub(crate) fn malformed() -> Error {
    corrupt("malformed header or tag section")
}

/// Takes one big-endian `u64` header field (`N` = its declared length,
/// 8) off the front of `body`.
fn take_u64<const N: usize>(body: &mut &[u8], truncated: &str) -> Result<u64, Error> {
    const { assert!(N == 8) };
    let Some((field, rest)) = body.split_first_chunk::<8>() else {
        return Err(corrupt(truncated));
    };
    *body = rest;
    Ok(u64::from_be_bytes(*field))
}

fn corrupt(what: &str) -> Error {
    Error::new(
        ErrorKind::Codec,
        format!("stored entry is not in tagcache format: {what}"),
    )
}

/// The tag-section length a header announces (bytes 2..6, u32 big-endian);
/// `bytes` holds at least the header.
fn section_len(bytes: &[u8]) -> usize {
    u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]) as usize
}

/// Splits stored bytes into header, tags and payload.
pub(crate) fn decode_entry(bytes: &[u8]) -> Result<Decoded<'_>, Error> {
    if bytes.len() < HEADER_LEN {
        return Err(corrupt("shorter than the header"));
    }
    if bytes[0] != FORMAT_VERSION {
        return Err(corrupt("unknown format version"));
    }
    let flags = bytes[1];
    let codec = match flags >> CODEC_SHIFT {
        0 => Codec::Raw,
        1 => Codec::MsgPack,
        _ => return Err(corrupt("unknown codec")),
    };
    let section_len = section_len(bytes);
    let rest = &bytes[HEADER_LEN..];
    if rest.len() < section_len {
        return Err(corrupt("tag section longer than the entry"));
    }
    let (tag_section, mut body) = rest.split_at(section_len);
    // The same rules as the scripts' `tag_section` (lib.lua): an entry they
    // cannot read the tags of is one a read refuses too.
    section_tags(tag_section).try_for_each(|t| t.map(drop))?;
    let fresh_until = (flags & FLAG_FRESH_UNTIL != 0)
        .then(|| take_u64::<FRESH_UNTIL_LEN>(&mut body, "truncated fresh-until time"))
        .transpose()?;
    let ttl_ms = (flags & FLAG_TTL != 0)
        .then(|| take_u64::<TTL_LEN>(&mut body, "truncated TTL field"))
        .transpose()?;
    Ok(Decoded {
        codec,
        tag_section,
        fresh_until,
        ttl_ms,
        compressed: flags & FLAG_LZ4 != 0,
        body,
    })
}

/// The tags of a section, each checked: a u16 big-endian length, non-empty,
/// inside the section.
fn section_tags(mut section: &[u8]) -> impl Iterator<Item = Result<&[u8], Error>> {
    std::iter::from_fn(move || {
        if section.is_empty() {
            return None;
        }
        if section.len() < 2 {
            section = &[];
            return Some(Err(corrupt("truncated tag length")));
        }
        let len = usize::from(u16::from_be_bytes([section[0], section[1]]));
        let end = 2 + len;
        if len == 0 || section.len() < end {
            section = &[];
            return Some(Err(corrupt(if len == 0 {
                "empty tag"
            } else {
                "truncated tag"
            })));
        }
        let tag = &section[2..end];
        section = &section[end..];
        Some(Ok(tag))
    })
}

/// The tags found in the first bytes of a stored entry (`head`, e.g. a
/// `GETRANGE` of its first 256 bytes), when they hold its whole tag
/// section; `None` when they do not, or are not a tagcache entry. Stops at
/// the first malformed tag. A hint for what to declare, never a verdict:
/// the scripts read the entry again.
pub(crate) fn tags_in_head(head: &[u8]) -> Option<impl Iterator<Item = &[u8]>> {
    if head.len() < HEADER_LEN || head[0] != FORMAT_VERSION {
        return None;
    }
    let section = head.get(HEADER_LEN..HEADER_LEN.checked_add(section_len(head))?)?;
    Some(tags_in_section(section))
}

/// The well-formed tags of a section, up to the first malformed one.
pub(crate) fn tags_in_section(section: &[u8]) -> impl Iterator<Item = &[u8]> {
    section_tags(section).map_while(Result::ok)
}

/// Parses a tag section into the tag list.
pub(crate) fn parse_tags(section: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    section_tags(section)
        .map(|t| t.map(<[u8]>::to_vec))
        .collect()
}

/// Encodes a tag list as a tag section (the bytes the scripts compare).
pub(crate) fn tag_section(tags: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tags.iter().map(|t| 2 + t.len()).sum());
    for t in tags {
        out.extend_from_slice(&u16::try_from(t.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(t);
    }
    out
}

/// Whether an entry with a grace period is past its fresh-until time.
pub(crate) fn is_stale(d: &Decoded<'_>, now_ms: u64) -> bool {
    d.fresh_until.is_some_and(|f| f < now_ms)
}

/// [`is_stale`] against this host's clock, read only for entries with a
/// grace period (most entries have none).
pub(crate) fn is_stale_now(d: &Decoded<'_>) -> bool {
    d.fresh_until.is_some_and(|f| f < local_now_ms())
}

/// This host's wall clock in ms (Redis' clock is used wherever a round
/// trip already brings it).
pub(crate) fn local_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_tags_and_payload() {
        let tags = vec![b"a".to_vec(), b"b:{x}".to_vec(), vec![0, 255]];
        let bytes = encode_entry(
            &tags,
            b"hello",
            Codec::Raw,
            Compression::default(),
            false,
            None,
        );
        assert_eq!(bytes[0], FORMAT_VERSION);
        let d = decode_entry(&bytes).unwrap();
        assert_eq!(d.codec, Codec::Raw);
        assert_eq!(parse_tags(d.tag_section).unwrap(), tags);
        assert_eq!(d.tag_section, tag_section(&tags));
        assert_eq!(d.payload(100).unwrap(), b"hello");
    }

    #[test]
    fn the_ttl_field_follows_fresh_until_and_precedes_the_payload() {
        for graced in [false, true] {
            let bytes = encode_entry(
                &[b"t".to_vec()],
                b"payload",
                Codec::Raw,
                Compression::none(),
                graced,
                Some(60_000),
            );
            let d = decode_entry(&bytes).unwrap();
            assert_eq!(d.ttl_ms, Some(60_000));
            assert_eq!(d.fresh_until, graced.then_some(0));
            assert_eq!(d.payload(100).unwrap(), b"payload");
            assert!(decode_entry(&bytes[..6 + 3 + 4]).is_err());
        }
    }

    #[test]
    fn compresses_large_payloads_only_when_smaller() {
        let payload = vec![7u8; 10_000];
        let bytes = encode_entry(
            &[],
            &payload,
            Codec::MsgPack,
            Compression::lz4_above(1024),
            true,
            None,
        );
        assert!(bytes.len() < 1000);
        let d = decode_entry(&bytes).unwrap();
        assert_eq!(d.fresh_until, Some(0));
        assert_eq!(d.payload(1 << 20).unwrap(), payload);
        assert!(d.payload(100).is_err(), "decompression bomb guard");

        let small = encode_entry(
            &[],
            b"tiny",
            Codec::Raw,
            Compression::lz4_above(1),
            false,
            None,
        );
        assert_eq!(decode_entry(&small).unwrap().payload(10).unwrap(), b"tiny");
    }

    #[test]
    fn a_taken_payload_is_the_copied_one() {
        let long_tags = vec![vec![b'x'; 500]];
        for (tags, payload, graced, compression) in [
            (
                vec![b"a".to_vec()],
                vec![7u8; 256],
                false,
                Compression::none(),
            ),
            (
                vec![b"a".to_vec()],
                vec![7u8; 256],
                true,
                Compression::none(),
            ),
            (
                long_tags.clone(),
                b"short".to_vec(),
                true,
                Compression::none(),
            ),
            (vec![], vec![], false, Compression::none()),
            (long_tags, vec![3u8; 5000], false, Compression::lz4_above(1)),
        ] {
            let bytes = encode_entry(&tags, &payload, Codec::Raw, compression, graced, None);
            let d = decode_entry(&bytes).unwrap();
            let copied = d.payload(1 << 20).unwrap();
            let body = d.body(&bytes);
            assert_eq!(copied, payload);
            assert_eq!(d.with_payload(1 << 20, <[u8]>::to_vec).unwrap(), payload);
            assert_eq!(body.take(bytes.clone(), 1 << 20).unwrap(), payload);
            if compression != Compression::none() {
                assert!(body.take(bytes, 100).is_err(), "decompression bomb guard");
            }
        }
    }

    #[test]
    fn rejects_foreign_bytes() {
        assert!(decode_entry(b"plain").is_err());
        assert!(decode_entry(b"\x09\x00\x00\x00\x00\x00").is_err());
        assert!(decode_entry(b"\x01\x00\x00\x00\x00\x09abc").is_err());
        assert!(parse_tags(b"\x00\x05ab").is_err());
        assert!(parse_tags(b"\x00\x00").is_err(), "empty tag");
        assert!(parse_tags(b"\x00").is_err());
        // A header and section a read refuses, as the scripts do.
        assert!(decode_entry(b"\x01\x00\x00\x00\x00\x01X").is_err());
        assert!(decode_entry(b"\x01\x00\x00\x00\x00\x03\x00\x05ab").is_err());
        assert!(
            decode_entry(b"\x01\x20\x00\x00\x00\x00").is_err(),
            "codec 2"
        );
        assert!(
            decode_entry(b"\x01\x02\x00\x00\x00\x00abc").is_err(),
            "fresh-until"
        );
    }
}
