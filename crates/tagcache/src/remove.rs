//! Removing entries together with every index edge they have: the common
//! step of `delete` and of each invalidation chunk.
//!
//! Scripts may only touch keys they were given, and an entry's tags are
//! only known by reading it, so removal is two calls: `read_tags.lua`
//! reads the tag sections, `drop.lua` removes each entry whose section is
//! still the one read (an entry rewritten in between is reported as
//! changed and read again).

use redis::Value;

use crate::codec::parse_tags;
use crate::core::Core;
use crate::error::{Error, ErrorKind, Result};
use crate::scripts::SCRIPTS;
use crate::table::KeyTable;

/// What `drop_entries` did.
#[derive(Debug, Default)]
pub(crate) struct Dropped {
    /// Entries deleted.
    pub(crate) dropped: u64,
    /// Members whose entry changed since it was read.
    pub(crate) changed: Vec<Vec<u8>>,
}

impl Core {
    /// The tag sections of entries of one bucket (`None`: no such entry).
    pub(crate) async fn read_sections(
        &self,
        bucket: u16,
        members: &[Vec<u8>],
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let keys: Vec<Vec<u8>> = members
            .iter()
            .map(|m| self.space.entry(bucket, m))
            .collect();
        let call = crate::conn::ScriptCall::new(&SCRIPTS.read_tags, &keys);
        let sections: Vec<Option<Vec<u8>>> = self.conn.run(&call).await?;
        if sections.len() != members.len() {
            return Err(Error::new(
                ErrorKind::Protocol,
                "read_tags.lua answered the wrong count",
            ));
        }
        Ok(sections)
    }

    /// Removes entries of one bucket whose tag sections are still `states`.
    /// With `invalidating = Some(tag)`, the members are also removed from
    /// that tag's snapshot, and entries no longer carrying the tag are left
    /// alone (they were rewritten after the invalidation began).
    pub(crate) async fn drop_entries(
        &self,
        bucket: u16,
        members: &[Vec<u8>],
        states: &[Option<Vec<u8>>],
        invalidating: Option<&[u8]>,
    ) -> Result<Dropped> {
        let mut out = Dropped::default();
        let parsed: Vec<Vec<Vec<u8>>> = states
            .iter()
            .map(|s| {
                s.as_deref()
                    .map(parse_tags)
                    .transpose()
                    .map(Option::unwrap_or_default)
            })
            .collect::<Result<_>>()?;
        let chunk = self.limits.chunk_size;
        let mut start = 0;
        while start < members.len() {
            let mut end = start;
            let mut edges = 0;
            while end < members.len() {
                let more = parsed[end].len();
                if end > start && (end - start >= chunk || edges + more > 4 * chunk) {
                    break;
                }
                edges += more;
                end += 1;
            }
            let part = self
                .drop_call(
                    bucket,
                    &members[start..end],
                    &states[start..end],
                    &parsed[start..end],
                    invalidating,
                )
                .await?;
            out.dropped += part.dropped;
            out.changed.extend(part.changed);
            start = end;
        }
        Ok(out)
    }

    async fn drop_call(
        &self,
        bucket: u16,
        members: &[Vec<u8>],
        states: &[Option<Vec<u8>>],
        tags: &[Vec<Vec<u8>>],
        invalidating: Option<&[u8]>,
    ) -> Result<Dropped> {
        let mut table = KeyTable::new(&self.space);
        let mut nums = Vec::with_capacity(members.len());
        for (m, t) in members.iter().zip(tags) {
            table.entry(bucket, m);
            nums.push(t.iter().map(|t| table.tag(bucket, t)).collect::<Vec<_>>());
        }
        let reg = table.registry(bucket);
        let extra = match invalidating {
            Some(tag) => vec![
                self.space.snapshot(bucket, tag),
                self.space.inflight(bucket),
            ],
            None => vec![],
        };
        let window = self.limits.fence_window_us();
        let mut call = table.call(
            &SCRIPTS.drop,
            [invalidating.unwrap_or(b""), window.as_bytes()],
            &extra,
        );
        for ((m, state), (t, n)) in members.iter().zip(states).zip(tags.iter().zip(&nums)) {
            let drop = match invalidating {
                Some(tag) => t.iter().any(|x| x.as_slice() == tag),
                None => true,
            };
            let mut expected = Vec::new();
            match state {
                Some(section) => {
                    expected.push(b'1');
                    expected.extend_from_slice(section);
                }
                None => expected.push(b'0'),
            }
            call.arg(m.as_slice())
                .arg(reg)
                .arg(if drop { "1" } else { "0" })
                .arg(expected)
                .arg(n.len());
            for j in n {
                call.arg(*j);
            }
        }
        let reply: Vec<Value> = self.conn.run(&call).await?;
        let mut it = reply.into_iter();
        let dropped = match it.next() {
            Some(Value::Int(d)) => u64::try_from(d).unwrap_or(0),
            other => {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("drop.lua answered {other:?}"),
                ))
            }
        };
        let changed = members
            .iter()
            .zip(it)
            .filter(|(_, s)| matches!(s, Value::Int(3)))
            .map(|(m, _)| m.clone())
            .collect();
        Ok(Dropped { dropped, changed })
    }

    /// Deletes entries (validated keys) with all their edges, bucket by
    /// bucket, in chunks; returns how many existed.
    pub(crate) async fn delete_keys(&self, keys: &[Vec<u8>]) -> Result<u64> {
        let mut by_bucket: Vec<Vec<Vec<u8>>> = vec![Vec::new(); usize::from(self.space.buckets())];
        let mut seen = std::collections::HashSet::new();
        for k in keys {
            if seen.insert(k.as_slice()) {
                by_bucket[usize::from(self.space.bucket_of(k))].push(k.clone());
            }
        }
        let mut total = 0;
        for (bucket, members) in (0u16..).zip(by_bucket) {
            for chunk in members.chunks(self.limits.chunk_size) {
                total += self.delete_in_bucket(bucket, chunk.to_vec()).await?;
            }
        }
        Ok(total)
    }

    /// Deletes entries of one bucket with all their edges; returns how many
    /// existed.
    pub(crate) async fn delete_in_bucket(&self, bucket: u16, members: Vec<Vec<u8>>) -> Result<u64> {
        let mut total = 0;
        let mut todo = members;
        for _ in 0..16 {
            if todo.is_empty() {
                return Ok(total);
            }
            let states = self.read_sections(bucket, &todo).await?;
            let d = self.drop_entries(bucket, &todo, &states, None).await?;
            total += d.dropped;
            todo = d.changed;
        }
        Err(Error::new(
            ErrorKind::Contended,
            "entries kept changing during delete",
        ))
    }
}
