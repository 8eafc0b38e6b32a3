//! Reading an entry's payload together with how it was written, for tools
//! that show entries they did not write (the CLI prints MessagePack
//! values as JSON and raw bytes as they are).

use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorKind, Result};
use crate::layout::codec::{self, is_stale, local_now_ms, Codec};

/// How an entry's payload was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// The caller's bytes ([`Cache::set_bytes`](crate::Cache::set_bytes)).
    Raw,
    /// A serde value as MessagePack ([`Cache::set`](crate::Cache::set)).
    MsgPack,
}

/// An entry's payload (decompressed) and its [`Encoding`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Payload {
    /// How the bytes were written.
    pub encoding: Encoding,
    /// The payload bytes: for [`Encoding::MsgPack`], the MessagePack
    /// document.
    pub bytes: Vec<u8>,
}

impl Payload {
    /// Decodes a MessagePack payload into any serde type (for instance
    /// `serde_json::Value`, to show a value of unknown type).
    ///
    /// # Errors
    /// [`ErrorKind::Codec`]: raw bytes, or MessagePack that does not fit `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        match self.encoding {
            Encoding::MsgPack => codec::from_msgpack(&self.bytes),
            Encoding::Raw => Err(Error::new(
                ErrorKind::Codec,
                "entry holds raw bytes, not a typed value",
            )),
        }
    }
}

/// An entry's payload with its encoding, from the entry's stored bytes;
/// `None` when it is stale (as `Cache::get_bytes`).
///
/// # Errors
/// [`ErrorKind::Codec`] for bytes not in tagcache format, tag section
/// included.
pub(crate) fn of_entry(raw: &[u8], max_value_bytes: usize) -> Result<Option<Payload>> {
    let d = codec::decode_entry(raw)?;
    codec::parse_tags(d.tag_section)?;
    if is_stale(&d, local_now_ms()) {
        return Ok(None);
    }
    let encoding = match d.codec {
        Codec::Raw => Encoding::Raw,
        Codec::MsgPack => Encoding::MsgPack,
    };
    Ok(Some(Payload {
        encoding,
        bytes: d.payload(max_value_bytes)?,
    }))
}
