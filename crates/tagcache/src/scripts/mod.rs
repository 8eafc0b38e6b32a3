//! The Lua scripts, one per atomic operation, each kept as a `.lua` file.
//!
//! Every script gets `lib.lua` (shared helpers) prepended, is hashed once,
//! and runs with `EVALSHA`; redis-rs reloads it on `NOSCRIPT` (after a
//! restart or `SCRIPT FLUSH`). [`Scripts::all`] lists them so the cache can
//! `SCRIPT LOAD` each at connect, which also proves the user may run them.

pub(crate) mod table;

use std::sync::LazyLock;

/// A script with its name (for errors and metrics).
pub(crate) struct Script {
    pub(crate) name: &'static str,
    /// The source as sent (`lib.lua` first): Redis reports errors by its
    /// line numbers.
    pub(crate) source: &'static str,
    pub(crate) script: redis::Script,
}

macro_rules! script {
    ($name:literal) => {
        script!(@ $name, "")
    };
    // A script that frees memory: it must run when Redis is at maxmemory.
    // Without flags, Redis refuses a script's first memory-growing write
    // then (its bookkeeping, e.g. a fence or a registry score); the
    // `allow-oom` flag lets all of it run. The shebang must be the very
    // first line, before lib.lua.
    ($name:literal, frees_memory) => {
        script!(@ $name, "#!lua flags=allow-oom\n")
    };
    (@ $name:literal, $shebang:literal) => {{
        let source = concat!(
            $shebang,
            include_str!("lib.lua"),
            include_str!(concat!($name, ".lua"))
        );
        Script {
            name: $name,
            source,
            script: redis::Script::new(source),
        }
    }};
}

/// Every script tagcache runs.
pub(crate) struct Scripts {
    pub(crate) set: Script,
    pub(crate) read_tags: Script,
    pub(crate) drop: Script,
    pub(crate) snapshot: Script,
    pub(crate) sweep_tag: Script,
    pub(crate) sweep_gone: Script,
    pub(crate) tag_page: Script,
    pub(crate) tag_count: Script,
    pub(crate) tag_member: Script,
    pub(crate) meta: Script,
    pub(crate) trim: Script,
    pub(crate) clear_cut: Script,
    pub(crate) clear_step: Script,
    pub(crate) group_put: Script,
    pub(crate) legacy_move: Script,
    pub(crate) legacy_del_if: Script,
    pub(crate) unlink: Script,
}

impl Scripts {
    /// Every script, for loading at connect.
    pub(crate) fn all(&self) -> [&Script; 17] {
        [
            &self.set,
            &self.read_tags,
            &self.drop,
            &self.snapshot,
            &self.sweep_tag,
            &self.sweep_gone,
            &self.tag_page,
            &self.tag_count,
            &self.tag_member,
            &self.meta,
            &self.trim,
            &self.clear_cut,
            &self.clear_step,
            &self.group_put,
            &self.legacy_move,
            &self.legacy_del_if,
            &self.unlink,
        ]
    }
}

/// The scripts, hashed once per process.
pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    set: script!("set"),
    read_tags: script!("read_tags"),
    drop: script!("drop", frees_memory),
    snapshot: script!("snapshot", frees_memory),
    sweep_tag: script!("sweep_tag", frees_memory),
    sweep_gone: script!("sweep_gone", frees_memory),
    tag_page: script!("tag_page"),
    tag_count: script!("tag_count"),
    tag_member: script!("tag_member"),
    meta: script!("meta"),
    trim: script!("trim", frees_memory),
    clear_cut: script!("clear_cut", frees_memory),
    clear_step: script!("clear_step", frees_memory),
    group_put: script!("group_put"),
    legacy_move: script!("legacy_move"),
    legacy_del_if: script!("legacy_del_if"),
    unlink: script!("unlink", frees_memory),
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_distinct_and_hashed() {
        let mut hashes: Vec<&str> = SCRIPTS.all().iter().map(|s| s.script.get_hash()).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), SCRIPTS.all().len());
        assert!(hashes.iter().all(|h| h.len() == 40));
    }
}
