//! The key table shared by the batch scripts (`set.lua`, `drop.lua`):
//! n entry keys, then m distinct tag index keys, then k registry keys, with
//! the tag names and registry numbers the scripts need to pair them.

use std::collections::HashMap;

use crate::conn::ScriptCall;
use crate::keys::KeySpace;
use crate::scripts::Script;

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

    /// Starts the script call: KEYS (entries, tags, registries, `extra`),
    /// then ARGV `n, m, k, head`, the m tag names and m registry numbers.
    pub(crate) fn call(
        &self,
        script: &'static Script,
        head: &[u8],
        extra_keys: &[Vec<u8>],
    ) -> ScriptCall {
        let mut keys: Vec<Vec<u8>> = Vec::with_capacity(
            self.entries.len() + self.tags.len() + self.registries.len() + extra_keys.len(),
        );
        keys.extend(self.entries.iter().cloned());
        keys.extend(self.tags.iter().map(|(b, t)| self.space.tag(*b, t)));
        keys.extend(self.registries.iter().map(|b| self.space.registry(*b)));
        keys.extend(extra_keys.iter().cloned());
        let mut call = ScriptCall::new(script, &keys);
        call.arg(self.entries.len())
            .arg(self.tags.len())
            .arg(self.registries.len())
            .arg(head);
        for (_, name) in &self.tags {
            call.arg(name.as_slice());
        }
        for (b, _) in &self.tags {
            call.arg(self.registry_numbers.get(b).copied().unwrap_or(0));
        }
        call
    }
}
