//! Bulk migration: one resumable `SCAN` pass over the keyspace that moves
//! every legacy key the rules map, then marks the namespace as migrated.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;

use super::moves::{Move, Moved};
use super::rules::{Classified, LegacyRules, LegacyTarget};
use super::{default_ttl, scan, Legacy};
use crate::cache::Cache;
use crate::engine::core::Core;
use crate::error::{Error, ErrorKind, Result};
use crate::layout::codec::local_now_ms;
use crate::layout::keys::{is_tagcache_key, META_LEGACY_DONE};
use crate::layout::path::KeyPath;

/// Options of a bulk migration ([`Cache::legacy_migration`]).
///
/// ```
/// let opts = tagcache::legacy::MigrateOptions::new().dry_run(true).rate_per_sec(500).batch(1000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct MigrateOptions {
    dry_run: bool,
    rate_per_sec: u32,
    batch: usize,
    restart: bool,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            rate_per_sec: 0,
            batch: 1000,
            restart: false,
        }
    }
}

impl MigrateOptions {
    /// Migrate for real, unthrottled, 1000 keys per `SCAN`, resuming a
    /// saved cursor.
    pub fn new() -> Self {
        Self::default()
    }

    /// Change nothing (no move, no cursor, no marker); report what would
    /// be done. Default: off.
    pub fn dry_run(mut self, on: bool) -> Self {
        self.dry_run = on;
        self
    }

    /// At most this many legacy keys handled per second (0: no limit).
    /// Default: no limit.
    pub fn rate_per_sec(mut self, n: u32) -> Self {
        self.rate_per_sec = n;
        self
    }

    /// Keys each `SCAN` call looks at (its `COUNT`), 1 to 100 000: the
    /// unit of work, progress and resumption. Default: 1000.
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n.clamp(1, 100_000);
        self
    }

    /// Ignore a saved cursor and start a fresh pass. Default: resume.
    pub fn restart(mut self, on: bool) -> Self {
        self.restart = on;
        self
    }
}

/// Counts of a migration (one step, or the totals of a pass).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationReport {
    /// Keys `SCAN` returned (tagcache's own included).
    pub scanned: u64,
    /// Legacy keys moved to the new layout (in a dry run: that would be).
    pub migrated: u64,
    /// Legacy keys whose new key already existed: stale twins, deleted
    /// (in a dry run: that would be).
    pub skipped: u64,
    /// Keys no rule matches (tagcache's own keys are not counted).
    pub unmatched: u64,
    /// Keys a rule matches in more than one way: left alone.
    pub ambiguous: u64,
    /// Legacy keys that vanished between the `SCAN` and the move (expired,
    /// or moved by a concurrent read).
    pub vanished: u64,
    /// Keys matching a rule that are not strings: left alone.
    pub not_string: u64,
}

const FIELDS: [&str; 7] = [
    "scanned",
    "migrated",
    "skipped",
    "unmatched",
    "ambiguous",
    "vanished",
    "not_string",
];

impl MigrationReport {
    fn values(&self) -> [u64; 7] {
        [
            self.scanned,
            self.migrated,
            self.skipped,
            self.unmatched,
            self.ambiguous,
            self.vanished,
            self.not_string,
        ]
    }

    fn from_values(v: [u64; 7]) -> Self {
        Self {
            scanned: v[0],
            migrated: v[1],
            skipped: v[2],
            unmatched: v[3],
            ambiguous: v[4],
            vanished: v[5],
            not_string: v[6],
        }
    }

    fn add(&mut self, other: &Self) {
        let (a, b) = (self.values(), other.values());
        *self = Self::from_values(std::array::from_fn(|i| a[i] + b[i]));
    }

    fn count(&mut self, action: MoveAction) {
        match action {
            MoveAction::Migrate => self.migrated += 1,
            MoveAction::SkipExisting => self.skipped += 1,
            MoveAction::Vanished => self.vanished += 1,
            MoveAction::NotString => self.not_string += 1,
        }
    }
}

/// What was (or, in a dry run, would be) done with one legacy key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MoveAction {
    /// Moved to its new key.
    Migrate,
    /// The new key existed: the legacy key is a stale twin, deleted.
    SkipExisting,
    /// The legacy key was gone by the time of the move.
    Vanished,
    /// The legacy key is not a string: left alone.
    NotString,
}

/// One legacy key of a step, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlannedMove {
    /// The legacy key.
    pub legacy_key: Vec<u8>,
    /// The rule that matched it.
    pub rule: String,
    /// The new key (owner path plus part).
    pub new_key: KeyPath,
    /// What was (or would be) done.
    pub action: MoveAction,
}

/// The outcome of one [`Migration::step`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationStep {
    /// Counts of this step.
    pub counts: MigrationReport,
    /// Counts of the whole pass so far (including earlier, interrupted
    /// runs it resumed).
    pub totals: MigrationReport,
    /// Each legacy key this step handled.
    pub moves: Vec<PlannedMove>,
    /// Whether the pass is complete (the marker is then set, unless dry run).
    pub done: bool,
}

/// A bulk migration in progress: call [`Migration::step`] until it says
/// `done`, or [`Migration::run`].
///
/// Each step is one `SCAN` call (`COUNT` = the batch) and at most a few
/// bounded script calls (≤ 128 moves each). After each step the cursor
/// and the running counts are saved in `{<ns>}:legacy`, so a migration
/// stopped at any point (crash, Ctrl-C, a dropped future) resumes there
/// when started again with the same rules; legacy keys already moved are
/// gone, so nothing is moved twice and a re-run after completion finds
/// nothing to do. When the pass completes, the field `legacy_done` of
/// `{<ns>}:meta` is set and the state key deleted: from then on caches of
/// the namespace no longer `SCAN` for legacy keys.
///
/// Run one migration per namespace at a time. Keys written in a legacy
/// format while the pass runs may be missed (`SCAN` only guarantees keys
/// present throughout): switch writers to the new layout first.
#[derive(Debug)]
pub struct Migration {
    core: Arc<Core>,
    legacy: Option<Arc<Legacy>>,
    rules: LegacyRules,
    fingerprint: String,
    opts: MigrateOptions,
    glob: Option<Vec<u8>>,
    cursor: u64,
    totals: MigrationReport,
    scanned_before: u64,
    done: bool,
    resumed: bool,
    started: Instant,
    handled: u64,
    keyspace: u64,
}

impl Cache {
    /// Starts (or resumes) a bulk migration of legacy keys: the step API.
    ///
    /// ```no_run
    /// # async fn demo(cache: tagcache::Cache, rules: tagcache::legacy::LegacyRules) -> tagcache::Result<()> {
    /// let mut migration = cache
    ///     .legacy_migration(&rules, tagcache::legacy::MigrateOptions::new().rate_per_sec(2000))
    ///     .await?;
    /// loop {
    ///     let step = migration.step().await?;
    ///     eprintln!("{} migrated, eta {:?}", step.totals.migrated, migration.eta());
    ///     if step.done {
    ///         break;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Redis errors (reading the saved state, `DBSIZE`).
    pub async fn legacy_migration(
        &self,
        rules: &LegacyRules,
        opts: MigrateOptions,
    ) -> Result<Migration> {
        let core = self.core_arc().clone();
        let fingerprint = rules.fingerprint();
        let prefix = rules.common_prefix();
        let glob = (!prefix.is_empty()).then(|| {
            let mut g = Vec::new();
            super::pattern::glob_escape_into(&prefix, &mut g);
            g.push(b'*');
            g
        });
        let keyspace: u64 = core.conn.query(&redis::cmd("DBSIZE")).await?;
        let mut m = Migration {
            core,
            legacy: self.legacy().cloned(),
            rules: rules.clone(),
            fingerprint,
            opts,
            glob,
            cursor: 0,
            totals: MigrationReport::default(),
            scanned_before: 0,
            done: false,
            resumed: false,
            started: Instant::now(),
            handled: 0,
            keyspace,
        };
        if !m.opts.dry_run && !m.opts.restart {
            m.load().await?;
        }
        Ok(m)
    }
}

/// A field of a hash read with `HGETALL`.
fn field<'a>(state: &'a [(String, String)], name: &str) -> Option<&'a str> {
    state
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl Migration {
    /// Reads the saved state; resumes it when it was made with these rules.
    async fn load(&mut self) -> Result<()> {
        let state: Vec<(String, String)> = self
            .core
            .conn
            .query(redis::cmd("HGETALL").arg(self.core.space.legacy_state()))
            .await?;
        let get = |f: &str| field(&state, f);
        if state.is_empty() {
            return Ok(());
        }
        if get("rules") != Some(self.fingerprint.as_str()) {
            tracing::warn!(
                namespace = self.core.space.namespace(),
                "saved legacy migration was made with other rules; starting a new pass"
            );
            return Ok(());
        }
        let num = |f: &str| get(f).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        self.cursor = num("cursor");
        self.totals = MigrationReport::from_values(std::array::from_fn(|i| num(FIELDS[i])));
        self.scanned_before = self.totals.scanned;
        self.resumed = true;
        Ok(())
    }

    /// Whether this migration resumed a saved one.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// Whether the pass is complete.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Counts of the pass so far.
    pub fn totals(&self) -> MigrationReport {
        self.totals
    }

    /// Keys in the database when this migration started (`DBSIZE`): the
    /// denominator of a progress bar (SCAN visits each key about once).
    pub fn keyspace_estimate(&self) -> u64 {
        self.keyspace
    }

    /// Fraction of the keyspace scanned, 0 to 1 (an estimate).
    pub fn fraction(&self) -> f64 {
        if self.done {
            return 1.0;
        }
        if self.keyspace == 0 {
            return 0.0;
        }
        (self.totals.scanned as f64 / self.keyspace as f64).min(1.0)
    }

    /// Estimated time left, from this run's scan rate; `None` before the
    /// first step.
    pub fn eta(&self) -> Option<Duration> {
        if self.done {
            return Some(Duration::ZERO);
        }
        let scanned_now = self.totals.scanned.saturating_sub(self.scanned_before);
        if scanned_now == 0 {
            return None;
        }
        let left = self.keyspace.saturating_sub(self.totals.scanned);
        let per_key = self.started.elapsed().as_secs_f64() / scanned_now as f64;
        Some(Duration::from_secs_f64(per_key * left as f64))
    }

    /// Runs the remaining steps, calling `progress` after each; returns
    /// the totals.
    ///
    /// # Errors
    /// As [`Migration::step`].
    pub async fn run(
        mut self,
        mut progress: impl FnMut(&MigrationStep, &Migration),
    ) -> Result<MigrationReport> {
        loop {
            let step = self.step().await?;
            progress(&step, &self);
            if step.done {
                return Ok(self.totals);
            }
        }
    }

    /// One `SCAN` call and the moves of the legacy keys it returned;
    /// saves the cursor (not in a dry run). Waits first as needed to keep
    /// to the rate limit. After the pass is complete, returns `done` with
    /// zero counts.
    ///
    /// # Errors
    /// Redis errors: the step's moves that ran stay done; the cursor is
    /// not advanced, so the next step (or run) looks at the batch again.
    pub async fn step(&mut self) -> Result<MigrationStep> {
        if self.done {
            return Ok(MigrationStep {
                counts: MigrationReport::default(),
                totals: self.totals,
                moves: Vec::new(),
                done: true,
            });
        }
        self.pace().await;
        let (next, keys) = scan(
            &self.core,
            self.cursor,
            self.glob.as_deref(),
            self.opts.batch,
        )
        .await?;
        let mut counts = MigrationReport {
            scanned: keys.len() as u64,
            ..MigrationReport::default()
        };
        let mut matched: Vec<(Vec<u8>, LegacyTarget)> = Vec::new();
        for k in keys {
            match self.rules.classify(&k) {
                Classified::Mapped(t) => matched.push((k, t)),
                Classified::Ambiguous => counts.ambiguous += 1,
                Classified::Unmatched if !is_tagcache_key(&k) => counts.unmatched += 1,
                Classified::Unmatched => {}
            }
        }
        let actions = if self.opts.dry_run {
            self.plan(&matched).await?
        } else {
            self.apply(&matched).await?
        };
        let mut moves = Vec::with_capacity(matched.len());
        for ((legacy_key, t), action) in matched.into_iter().zip(actions) {
            counts.count(action);
            moves.push(PlannedMove {
                legacy_key,
                new_key: t.key(),
                rule: t.rule,
                action,
            });
        }
        self.handled += moves.len() as u64;
        self.cursor = next;
        self.totals.add(&counts);
        if next == 0 {
            self.finish().await?;
        } else if !self.opts.dry_run {
            self.save().await?;
        }
        Ok(MigrationStep {
            counts,
            totals: self.totals,
            moves,
            done: self.done,
        })
    }

    /// Sleeps so that keys handled stay within the rate.
    async fn pace(&self) {
        if self.opts.rate_per_sec == 0 {
            return;
        }
        let due = Duration::from_secs_f64(self.handled as f64 / f64::from(self.opts.rate_per_sec));
        let elapsed = self.started.elapsed();
        if due > elapsed {
            tokio::time::sleep(due - elapsed).await;
        }
    }

    /// Dry run: what each move would do (one pipelined round trip).
    async fn plan(&self, matched: &[(Vec<u8>, LegacyTarget)]) -> Result<Vec<MoveAction>> {
        if matched.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (k, t) in matched {
            let mv = Move::new(&self.core, k.clone(), t)?;
            pipe.exists(self.core.space.entry(mv.bucket, &mv.member))
                .cmd("TYPE")
                .arg(k.as_slice());
        }
        let replies: Vec<Value> = self.core.conn.pipe(&pipe).await?;
        if replies.len() != 2 * matched.len() {
            return Err(Error::new(
                ErrorKind::Protocol,
                "dry run: wrong reply count",
            ));
        }
        Ok(replies
            .chunks(2)
            .map(|r| {
                let kind: String = redis::from_redis_value(r[1].clone()).unwrap_or_default();
                match (kind.as_str(), &r[0]) {
                    ("none", _) => MoveAction::Vanished,
                    ("string", Value::Int(1)) => MoveAction::SkipExisting,
                    ("string", _) => MoveAction::Migrate,
                    _ => MoveAction::NotString,
                }
            })
            .collect())
    }

    /// Moves (grouped by bucket).
    async fn apply(&self, matched: &[(Vec<u8>, LegacyTarget)]) -> Result<Vec<MoveAction>> {
        let mut moves: Vec<(usize, Move)> = matched
            .iter()
            .enumerate()
            .map(|(i, (k, t))| Ok((i, Move::new(&self.core, k.clone(), t)?)))
            .collect::<Result<_>>()?;
        moves.sort_by_key(|(_, m)| m.bucket);
        let ordered: Vec<Move> = moves.iter().map(|(_, m)| m.clone()).collect();
        let ttl = default_ttl(&self.rules, &self.core);
        let mut results = Vec::with_capacity(ordered.len());
        for group in ordered.chunk_by(|a, b| a.bucket == b.bucket) {
            results.extend(self.core.legacy_moves(group, ttl).await?);
        }
        let mut actions = vec![MoveAction::Vanished; matched.len()];
        for ((i, _), moved) in moves.iter().zip(results) {
            actions[*i] = match moved {
                Moved::Migrated => MoveAction::Migrate,
                Moved::Twin => MoveAction::SkipExisting,
                Moved::Gone | Moved::Changed => MoveAction::Vanished,
                Moved::NotString => MoveAction::NotString,
            };
        }
        Ok(actions)
    }

    /// Saves the cursor and the counts.
    async fn save(&self) -> Result<()> {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(self.core.space.legacy_state())
            .arg("cursor")
            .arg(self.cursor)
            .arg("rules")
            .arg(&self.fingerprint);
        for (f, v) in FIELDS.iter().zip(self.totals.values()) {
            cmd.arg(*f).arg(v);
        }
        self.core.conn.query::<()>(&cmd).await
    }

    /// Sets the marker and drops the saved state (not in a dry run).
    async fn finish(&mut self) -> Result<()> {
        if !self.opts.dry_run {
            self.core
                .conn
                .query::<()>(
                    redis::cmd("HSET")
                        .arg(self.core.space.meta())
                        .arg(META_LEGACY_DONE)
                        .arg(local_now_ms()),
                )
                .await?;
            self.core
                .conn
                .query::<()>(redis::cmd("DEL").arg(self.core.space.legacy_state()))
                .await?;
            if let Some(l) = &self.legacy {
                l.mark_done();
            }
        }
        self.done = true;
        Ok(())
    }
}
