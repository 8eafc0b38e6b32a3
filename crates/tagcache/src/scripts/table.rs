//! The key table shared by the batch scripts (`set.lua`, `drop.lua`):
//! n entry keys, then m distinct tag index keys, then k registry keys, with
//! the tag names and registry numbers the scripts need to pair them.

use foldhash::{HashMap, HashMapExt};

use crate::layout::keys::KeySpace;
use crate::scripts::{Script, ScriptCall};

/// Collects the keys of one batch call, each declared once.
pub(crate) struct KeyTable<'k> {
    space: &'k KeySpace,
    entries: Vec<Vec<u8>>,
    tags: Vec<(u16, Vec<u8>)>,
    tag_numbers: HashMap<(u16, Vec<u8>), usize>,
    registries: Vec<u16>,
    registry_numbers: HashMap<u16, usize>,
}

impl<'k> KeyTable<'k> {
    pub(crate) fn new(space: &'k KeySpace) -> Self {
        Self {
            space,
            entries: Vec::new(),
            tags: Vec::new(),
            tag_numbers: HashMap::new(),
            registries: Vec::new(),
            registry_numbers: HashMap::new(),
        }
    }

    /// Declares an entry key.
    pub(crate) fn entry(&mut self, bucket: u16, key: &[u8]) {
        self.entries.push(self.space.entry(bucket, key));
    }

    /// The registry number (1-based) of a bucket, declaring it on first use.
    pub(crate) fn registry(&mut self, bucket: u16) -> usize {
        if let Some(&r) = self.registry_numbers.get(&bucket) {
            return r;
        }
        self.registries.push(bucket);
        let r = self.registries.len();
        self.registry_numbers.insert(bucket, r);
        r
    }

    /// The tag number (1-based) of a tag index, declaring it on first use.
    pub(crate) fn tag(&mut self, bucket: u16, name: &[u8]) -> usize {
        if let Some(&j) = self.tag_numbers.get(&(bucket, name.to_vec())) {
            return j;
        }
        self.registry(bucket);
        self.tags.push((bucket, name.to_vec()));
        let j = self.tags.len();
        self.tag_numbers.insert((bucket, name.to_vec()), j);
        j
    }

    /// Starts the script call: KEYS (entries, tags, registries, the
    /// registries' fences, their buckets' announcement counters, `extra`),
    /// then ARGV `n, m, k, head[0], head[1]`,
    /// the m tag names and m registry numbers.
    pub(crate) fn call(
        &self,
        script: &'static Script,
        head: [&[u8]; 2],
        extra_keys: &[Vec<u8>],
    ) -> ScriptCall {
        let mut call = self.call_by_key(script, head, extra_keys);
        for (_, name) in &self.tags {
            call.arg(name.as_slice());
        }
        for (b, _) in &self.tags {
            call.arg(self.registry_numbers.get(b).copied().unwrap_or(0));
        }
        call
    }

    /// [`KeyTable::call`] without the tag names and registry numbers: for a
    /// script that finds a declared index by its key (`drop.lua`, which may
    /// declare a thousand indexes a call).
    pub(crate) fn call_by_key(
        &self,
        script: &'static Script,
        head: [&[u8]; 2],
        extra_keys: &[Vec<u8>],
    ) -> ScriptCall {
        let mut keys: Vec<Vec<u8>> = Vec::with_capacity(
            self.entries.len() + self.tags.len() + 3 * self.registries.len() + extra_keys.len(),
        );
        keys.extend(self.entries.iter().cloned());
        keys.extend(self.tags.iter().map(|(b, t)| self.space.tag(*b, t)));
        keys.extend(self.registries.iter().map(|b| self.space.registry(*b)));
        keys.extend(self.registries.iter().map(|b| self.space.fence(*b)));
        keys.extend(self.registries.iter().map(|b| self.space.l1(*b)));
        keys.extend(extra_keys.iter().cloned());
        let mut call = ScriptCall::new(script, &keys);
        call.arg(self.entries.len())
            .arg(self.tags.len())
            .arg(self.registries.len())
            .arg(head[0])
            .arg(head[1]);
        call
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scripts::SCRIPTS;

    /// Pins the exact command a two-entry write sends: EVALSHA, the key
    /// table (entries, tag indexes, registry) and the header arguments.
    #[test]
    fn set_call_declares_every_key_once() {
        let space = KeySpace::new("ns", 1).unwrap();
        let mut t = KeyTable::new(&space);
        t.entry(0, b"a");
        t.entry(0, b"b");
        assert_eq!(t.tag(0, b"x"), 1);
        assert_eq!(t.tag(0, b"y"), 2);
        assert_eq!(t.tag(0, b"x"), 1);
        let call = t.call(&SCRIPTS.set, [b"16", b"30000"], &[]);
        let words: Vec<String> = split_resp(&call.packed());
        let sha = SCRIPTS.set.script.get_hash().to_owned();
        let expected: Vec<&str> = vec![
            "EVALSHA",
            &sha,
            "7",
            "{ns.0}:e:a",
            "{ns.0}:e:b",
            "{ns.0}:t:x",
            "{ns.0}:t:y",
            "{ns.0}:reg",
            "{ns.0}:fence",
            "{ns.0}:l1",
            "2",
            "2",
            "1",
            "16",
            "30000",
            "x",
            "y",
            "1",
            "1",
        ];
        assert_eq!(words, expected);
    }

    fn split_resp(packed: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(packed);
        text.split("\r\n")
            .filter(|l| !l.is_empty() && !l.starts_with('*') && !l.starts_with('$'))
            .map(str::to_owned)
            .collect()
    }
}
