//! Checking, after each step, that every API and the raw Redis state
//! answer what the model says (judged against the step's time window).

use super::*;

impl Case<'_> {
    pub(super) async fn check_pruned(&mut self, t0: u64) -> Check {
        let state = self.raw().await;
        for ((b, t), members) in &state.indexes {
            if let Some((k, s)) = members.iter().find(|(_, s)| *s < t0 as f64) {
                return Err(self.fail(format!(
                    "prune (from {t0}) left expired member {k:?} (score {s}) in index {t:?} of bucket {b}"
                )));
            }
        }
        for (b, reg) in &state.registry {
            if let Some((t, s)) = reg.iter().find(|(_, s)| *s < t0 as f64) {
                return Err(self.fail(format!(
                    "prune (from {t0}) left {t:?} due in the registry of bucket {b} (score {s})"
                )));
            }
            // Registry members go with their index.
            if let Some((t, s)) = reg
                .iter()
                .find(|(t, _)| !state.indexes.contains_key(&(*b, t.clone())))
            {
                return Err(self.fail(format!(
                    "after prune, the registry of bucket {b} files {t:?} (score {s}) which has no index"
                )));
            }
        }
        Ok(())
    }

    pub(super) async fn raw(&mut self) -> RawState {
        let con = self.con.as_mut().unwrap();
        raw::snapshot(
            con,
            &self.ns,
            self.buckets,
            &all_key_names(),
            &all_tag_names(),
        )
        .await
    }

    /// Notes whether `key` was seen, to be judged against the model.
    pub(super) fn saw(&mut self, key: usize, expect: bool, present: bool, what: String) {
        self.obs.push(Obs::Seen {
            key,
            expect,
            present,
            what,
        });
    }

    /// Judges every observation made during `[t0, t1]`.
    pub(super) fn judge(&mut self, t0: u64, t1: u64) -> Check {
        for o in std::mem::take(&mut self.obs) {
            match o {
                Obs::Seen {
                    key,
                    expect,
                    present,
                    what,
                } => {
                    let seen = if expect {
                        self.model.seen(key, t0, t1)
                    } else {
                        Seen::Dead
                    };
                    let ok = match seen {
                        Seen::Live => present,
                        Seen::Dead => !present,
                        Seen::Either => true,
                    };
                    if !ok {
                        return Err(self.fail(format!(
                            "{what}: present={present}, model says {seen:?} during [{t0}, {t1}]"
                        )));
                    }
                }
                Obs::Count {
                    keys,
                    got,
                    extra,
                    what,
                } => {
                    let (lo, hi) = self.model.count(keys.into_iter(), t0, t1);
                    if !(lo + extra..=hi + extra).contains(&got) {
                        return Err(self.fail(format!(
                            "{what} = {got}, expected {}..={}",
                            lo + extra,
                            hi + extra
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Scoped reads of keys with a legacy twin, first: they migrate it
    /// (or delete it as a stale twin), so every later observation of the
    /// check sees the state after.
    pub(super) async fn check_legacy_reads(&mut self) -> Check {
        let c = self.cache.clone();
        let twins: Vec<usize> = self.model.legacy.keys().copied().collect();
        for k in twins {
            let (scope, part) = scope_of(&c, k).unwrap();
            let got = scope
                .get_bytes(part.as_str())
                .await
                .map_err(|e| self.fail(e))?;
            let want = match self.model.entries.get(&k) {
                Some(e) => e.value,
                None => self.model.legacy[&k],
            };
            if got != Some(msgpack(want)) {
                return Err(self.fail(format!(
                    "scope get_bytes({}) with a legacy twin = {got:?}, model {want}",
                    KEYS[k]
                )));
            }
            self.migrate(k).await;
        }
        Ok(())
    }

    /// Every point read of every key, through every API that can name it.
    pub(super) async fn check_reads(&mut self) -> Check {
        let c = self.cache.clone();
        for (k, key) in KEYS.iter().enumerate() {
            let want = self.model.entries.get(&k).map(|e| e.value);
            let raw = self.model.entries.get(&k).is_some_and(|e| e.raw);
            let typed = |r: tagcache::Result<Option<u64>>| -> Result<Option<u64>, String> {
                match r {
                    // A legacy value is raw bytes: typed reads say so.
                    Err(e) if raw && e.kind() == tagcache::ErrorKind::Codec => Ok(want),
                    Err(e) => Err(e.to_string()),
                    Ok(v) => Ok(v),
                }
            };
            let mut reads = vec![(
                "get",
                typed(c.get::<u64>(key).await).map_err(|e| self.fail(e))?,
            )];
            let bytes = c.get_bytes(key).await.map_err(|e| self.fail(e))?;
            if bytes.is_some() && bytes != want.map(msgpack) {
                return Err(self.fail(format!("get_bytes({key}) = {bytes:?}, model {want:?}")));
            }
            self.saw(k, true, bytes.is_some(), format!("get_bytes({key})"));
            if let Some(path) = path_of(k) {
                reads.push((
                    "get_path",
                    typed(c.get_path::<u64>(&path).await).map_err(|e| self.fail(e))?,
                ));
                let (scope, part) = scope_of(&c, k).unwrap();
                reads.push((
                    "scope get",
                    typed(scope.get::<u64>(part.as_str()).await).map_err(|e| self.fail(e))?,
                ));
                let has = scope
                    .contains(part.as_str())
                    .await
                    .map_err(|e| self.fail(e))?;
                self.saw(k, true, has, format!("scope contains {key}"));
            }
            for (api, got) in reads {
                if got.is_some() && got != want {
                    return Err(self.fail(format!("{api}({key}) = {got:?}, model {want:?}")));
                }
                self.saw(k, true, got.is_some(), format!("{api}({key})"));
            }
            let tags = c.tags(key).await.map_err(|e| self.fail(e))?;
            self.saw(k, true, tags.is_some(), format!("tags({key})"));
            if let (Some(got), Some(e)) = (tags, self.model.entries.get(&k)) {
                let mut want: Vec<Vec<u8>> = e
                    .tags
                    .iter()
                    .map(|t| TAGS[*t].as_bytes().to_vec())
                    .collect();
                want.extend(implied(k));
                if got != want {
                    return Err(self.fail(format!("tags({key}) = {got:?}, model {want:?}")));
                }
            }
        }
        let fields = self.group().len().await.map_err(|e| self.fail(e))?;
        if fields != u64::from(self.model.group) {
            return Err(self.fail(format!(
                "group holds {fields} fields, model {}",
                self.model.group
            )));
        }
        Ok(())
    }

    /// Compares a listing (which must not repeat) with the model's keys.
    pub(super) fn judge_list(
        &mut self,
        listed: &[Vec<u8>],
        expect: impl Fn(usize) -> bool,
        what: &str,
    ) -> Check {
        let set: BTreeSet<&Vec<u8>> = listed.iter().collect();
        if set.len() != listed.len() {
            return Err(self.fail(format!("{what} repeats keys: {listed:?}")));
        }
        for l in listed {
            if !KEYS.iter().any(|k| k.as_bytes() == l.as_slice()) {
                return Err(self.fail(format!("{what} lists unknown key {l:?}")));
            }
        }
        for (k, key) in KEYS.iter().enumerate() {
            let present = set.contains(&key.as_bytes().to_vec());
            self.saw(k, expect(k), present, format!("{what} lists {key}"));
        }
        Ok(())
    }

    /// Every listing: tags, prefixes, scopes; every listed key reads back
    /// (checked by `check_reads` through the same model).
    pub(super) async fn check_listings(&mut self) -> Check {
        let c = self.cache.clone();
        for (t, tag) in TAGS.iter().enumerate() {
            let listed = c
                .keys_with_tag(tag)
                .page_size(2)
                .collect()
                .await
                .map_err(|e| self.fail(e))?;
            let tagged: Vec<bool> = (0..KEYS.len()).map(|k| self.model.has(k, t)).collect();
            self.judge_list(&listed, |k| tagged[k], &format!("keys_with_tag({tag})"))?;
            let len = c.tag_len(tag).await.map_err(|e| self.fail(e))?;
            self.obs.push(Obs::Count {
                keys: (0..KEYS.len()).filter(|k| tagged[*k]).collect(),
                got: len,
                extra: u64::from(t == GROUP_TAG && self.model.group),
                what: format!("tag_len({tag})"),
            });
            for (k, key) in KEYS.iter().enumerate() {
                let has = c.has_tag(key, tag).await.map_err(|e| self.fail(e))?;
                self.saw(k, tagged[k], has, format!("has_tag({key}, {tag})"));
            }
        }
        for p in 0..PREFIXES.len() {
            let pre = prefix(p);
            let paths = c
                .paths_under(&pre)
                .collect()
                .await
                .map_err(|e| self.fail(e))?;
            let listed: Vec<Vec<u8>> = paths.iter().map(|p| p.to_string().into_bytes()).collect();
            self.judge_list(
                &listed,
                |k| under(k, p, true),
                &format!("paths_under({pre})"),
            )?;
            if p > 0 {
                let scope = c.scope(pre.clone()).map_err(|e| self.fail(e))?;
                let keys = scope.keys().collect().await.map_err(|e| self.fail(e))?;
                let listed: Vec<Vec<u8>> =
                    keys.iter().map(|p| p.to_string().into_bytes()).collect();
                self.judge_list(
                    &listed,
                    |k| under(k, p, false),
                    &format!("scope({pre}).keys"),
                )?;
            }
        }
        let pattern = tagcache::PathPattern::new().part("o").any().part("a");
        let raw_match = [2, 4]
            .iter()
            .any(|k| self.model.entries.get(k).is_some_and(|e| e.raw));
        let found: Vec<(KeyPath, u64)> = match c.query(&pattern).collect().await {
            Ok(found) => found,
            // A typed query over a raw (legacy) value says so.
            Err(e) if raw_match && e.kind() == tagcache::ErrorKind::Codec => return Ok(()),
            Err(e) => return Err(self.fail(e)),
        };
        let listed: Vec<Vec<u8>> = found
            .iter()
            .map(|(p, _)| p.to_string().into_bytes())
            .collect();
        self.judge_list(
            &listed,
            |k| ["o:1:a", "o:10:a"].contains(&KEYS[k]),
            "query(o:*:a)",
        )?;
        for (p, v) in &found {
            let k = KEYS.iter().position(|k| *k == p.to_string()).unwrap();
            if self.model.entries.get(&k).map(|e| e.value) != Some(*v) {
                return Err(self.fail(format!("query returned {p} = {v}, model disagrees")));
            }
        }
        Ok(())
    }

    pub(super) async fn check_api(&mut self) -> Check {
        self.check_legacy_reads().await?;
        let t0 = self.now().await;
        self.check_reads().await?;
        self.check_listings().await?;
        let t1 = match self.con {
            Some(_) => self.now().await,
            None => u64::MAX - 1,
        };
        self.judge(t0, t1)
    }

    /// The raw layout: the invariants, and the entries equal the model.
    pub(super) async fn check_raw(&mut self) -> Check {
        let state = self.raw().await;
        state.check_quiescent().map_err(|e| self.fail(e))?;
        let now = state.now_ms as i64;
        for (k, key) in KEYS.iter().enumerate() {
            let want = self.model.entries.get(&k);
            let want_tags = want.map(|e| {
                let mut t: Vec<Vec<u8>> = e
                    .tags
                    .iter()
                    .map(|t| TAGS[*t].as_bytes().to_vec())
                    .collect();
                t.extend(implied(k));
                if t.is_empty() {
                    // An entry with no other edge carries the all-entries tag.
                    t.push(b"\0a".to_vec());
                }
                t
            });
            match (state.entry(key.as_bytes()), want) {
                (None, None) => {}
                // Expired before the snapshot read it.
                (None, Some(e)) if e.expire_at < now => {}
                (Some(r), Some(e))
                    if r.expire_at == e.expire_at && Some(&r.tags) == want_tags.as_ref() => {}
                (r, e) => {
                    return Err(
                        self.fail(format!("raw entry {key} is {r:?}, model {e:?} (now {now})"))
                    )
                }
            }
        }
        // Other buckets hold no copy of any key: one key, one entry.
        let expected: usize = KEYS
            .iter()
            .filter(|k| state.entry(k.as_bytes()).is_some())
            .count();
        if state.entries.len() != expected {
            return Err(self.fail(format!(
                "entries in foreign buckets: {:?}",
                state.entries.keys().collect::<Vec<_>>()
            )));
        }
        Ok(())
    }
}
