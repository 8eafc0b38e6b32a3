//! The Lua scripts, one per atomic operation, each kept as a `.lua` file.
//!
//! Every script but those marked `alone` gets the `lib.lua` statements it
//! uses prepended — helpers, constants, the globals bound to locals
//! ([`prelude`]: each runs again on every call) —, is hashed once,
//! and runs with `EVALSHA`; redis-rs reloads it on `NOSCRIPT` (after a
//! restart or `SCRIPT FLUSH`). [`Scripts::all`] lists them so the cache can
//! `SCRIPT LOAD` each at connect, which also proves the user may run them.

mod prelude;
pub(crate) mod table;

use std::sync::LazyLock;

/// A script with its name (for errors and metrics).
pub(crate) struct Script {
    pub(crate) name: &'static str,
    /// The source as sent (the `lib.lua` helpers it needs first): Redis
    /// reports errors by its line numbers.
    pub(crate) source: String,
    pub(crate) script: redis::Script,
}

macro_rules! script {
    ($name:ident) => {
        script!(@ $name, "")
    };
    // A script that frees memory: it must run when Redis is at maxmemory.
    // Without flags, Redis refuses a script's first memory-growing write
    // then (its bookkeeping, e.g. a fence or a registry score); the
    // `allow-oom` flag lets all of it run. The shebang must be the very
    // first line, before lib.lua.
    ($name:ident, frees_memory) => {
        script!(@ $name, "#!lua flags=allow-oom\n")
    };
    // A script on the write path's hot path that frees memory and needs
    // nothing from lib.lua: without it, a call costs ~2.3 µs less (the
    // helpers are defined again on every call; `redis-benchmark` of
    // `EVALSHA` on Redis 7.0.15: `return 1` 0.84 µs, lib.lua + `return 1`
    // 3.11 µs).
    ($name:ident, alone) => {{
        let source = concat!(
            "#!lua flags=allow-oom\n",
            include_str!(concat!(stringify!($name), ".lua"))
        );
        Script {
            name: stringify!($name),
            source: source.to_owned(),
            script: redis::Script::new(source),
        }
    }};
    (@ $name:ident, $shebang:literal) => {{
        let body = include_str!(concat!(stringify!($name), ".lua"));
        let source = format!(
            "{}{}{}",
            $shebang,
            prelude::prelude(include_str!("lib.lua"), body),
            body
        );
        Script {
            name: stringify!($name),
            script: redis::Script::new(&source),
            source,
        }
    }};
}

/// Declares every script once: its field in [`Scripts`] (named after its
/// `.lua` file), its place in [`Scripts::all`], and how [`SCRIPTS`] loads it.
macro_rules! scripts {
    ($($name:ident $(: $flag:ident)?),* $(,)?) => {
        /// Every script tagcache runs, one field per `.lua` file.
        pub(crate) struct Scripts {
            $(
                #[doc = concat!("`", stringify!($name), ".lua`")]
                pub(crate) $name: Script,
            )*
        }

        impl Scripts {
            /// Every script, for loading at connect.
            pub(crate) fn all(&self) -> Vec<&Script> {
                vec![$(&self.$name),*]
            }
        }

        /// The scripts, hashed once per process.
        pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
            $($name: script!($name $(, $flag)?),)*
        });
    };
}

scripts! {
    set,
    read_tags,
    drop: frees_memory,
    snapshot: frees_memory,
    sweep_tag: frees_memory,
    sweep_gone: frees_memory,
    tag_page,
    tag_count,
    tag_member,
    meta,
    trim: frees_memory,
    clear_cut: frees_memory,
    clear_step: frees_memory,
    group_put,
    legacy_move,
    legacy_del_if,
    // Removes only; on every rewrite that drops a tag another process
    // wrote, so it stands alone (lib.lua's helpers cost ~2.3 µs a call to
    // define: an empty script costs ~0.8 µs, one with lib.lua ~3.1).
    unlink: alone,
    // Deletes only (a refused read-through store), inside a transaction
    // whose other commands may already have run; on every read-through
    // store, so it stands alone.
    guard: alone,
    // Deletes only: it must run when Redis is full, or a full Redis would
    // keep every lease until it expires.
    lease_release: frees_memory,
    // The L1's counter check on a cluster: a read and a publish, on
    // every check period, needing nothing from lib.lua.
    l1_check: alone,
}

/// One `EVALSHA` with its keys and arguments, built in place (sent by
/// `server::conn`, which reloads the script on `NOSCRIPT`).
pub(crate) struct ScriptCall {
    pub(crate) script: &'static Script,
    pub(crate) cmd: redis::Cmd,
}

impl ScriptCall {
    /// Starts a call of `script` over `keys`.
    pub(crate) fn new<K: redis::ToRedisArgs>(script: &'static Script, keys: &[K]) -> Self {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(script.script.get_hash()).arg(keys.len()).arg(keys);
        Self { script, cmd }
    }

    /// Appends one argument.
    pub(crate) fn arg<A: redis::ToRedisArgs>(&mut self, a: A) -> &mut Self {
        self.cmd.arg(a);
        self
    }

    /// The command as sent, for tests that pin it.
    #[cfg(test)]
    pub(crate) fn packed(&self) -> Vec<u8> {
        self.cmd.get_packed_command()
    }
}

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

    #[test]
    fn every_lua_file_is_a_script() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/scripts");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|f| f.strip_suffix(".lua").map(str::to_owned))
            .filter(|f| f != "lib")
            .collect();
        files.sort();
        let mut names: Vec<&str> = SCRIPTS.all().iter().map(|s| s.name).collect();
        names.sort_unstable();
        assert_eq!(files, names);
    }
}
