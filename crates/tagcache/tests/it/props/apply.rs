//! Applying one random operation to the cache and to the model.

use super::*;

impl Case<'_> {
    pub(super) fn fail(&self, what: impl std::fmt::Display) -> TestCaseError {
        fail(self.step, self.op, what)
    }

    pub(super) fn legacy(&self) -> bool {
        self.with_legacy
    }

    /// Server ms; on the cluster (default TTLs only) a constant is enough.
    pub(super) async fn now(&mut self) -> u64 {
        match self.con.as_mut() {
            Some(con) => raw::server_ms(con).await,
            None => 0,
        }
    }

    pub(super) fn group(&self) -> tagcache::Group {
        self.cache.group("g", 1).unwrap().tag(TAGS[GROUP_TAG])
    }

    /// Records what Redis made of the writes: their exact expiry.
    pub(super) async fn record(&mut self, writes: &[Write]) {
        for w in writes {
            let value = self.model.next_value;
            self.model.next_value += 1;
            self.model.entries.insert(
                w.key,
                Entry {
                    tags: dedup(&w.tags),
                    value,
                    raw: false,
                    expire_at: i64::MAX,
                },
            );
        }
        for w in writes {
            self.record_expiry(w.key).await;
        }
    }

    /// Reads the entry's exact expiry into the model (single server).
    pub(super) async fn record_expiry(&mut self, key: usize) {
        let Some(con) = self.con.as_mut() else {
            return;
        };
        let name = format!(
            "{{{}.{}}}:e:{}",
            self.ns,
            raw::bucket_of(KEYS[key].as_bytes(), self.buckets),
            KEYS[key]
        );
        let at: i64 = redis::cmd("PEXPIRETIME")
            .arg(name)
            .query_async(con)
            .await
            .unwrap();
        // -2: a short TTL already ran out; the entry is simply dead.
        if let Some(e) = self.model.entries.get_mut(&key) {
            e.expire_at = at.max(0);
        }
    }

    /// A legacy key read or listed in `Migrate` mode: with no entry it
    /// becomes one (raw, the legacy key's TTL); beside an entry it was a
    /// stale twin. Either way it is gone.
    pub(super) async fn migrate(&mut self, key: usize) {
        let Some(value) = self.model.legacy.remove(&key) else {
            return;
        };
        if let std::collections::btree_map::Entry::Vacant(slot) = self.model.entries.entry(key) {
            slot.insert(Entry {
                tags: Vec::new(),
                value,
                raw: true,
                expire_at: i64::MAX,
            });
            self.record_expiry(key).await;
        }
    }

    pub(super) async fn set(&self, w: &Write, value: u64) -> tagcache::Result<()> {
        let opts = options(w);
        match (w.via, path_of(w.key)) {
            (Via::Path, Some(path)) => self.cache.set_path(&path, &value, &opts).await,
            (Via::Scope, Some(_)) => {
                let (scope, part) = scope_of(&self.cache, w.key).unwrap();
                scope.set(part, &value, &opts).await
            }
            _ => self.cache.set(KEYS[w.key], &value, &opts).await,
        }
    }

    /// Runs a removal returning a count, checks it against the model's
    /// bounds for `hit`, and forgets those keys.
    pub(super) async fn removal<F>(&mut self, hit: Vec<usize>, what: &str, run: F) -> Check
    where
        F: std::future::Future<Output = tagcache::Result<u64>>,
    {
        let t0 = self.now().await;
        let n = run.await.map_err(|e| self.fail(e))?;
        let t1 = self.now().await;
        let (lo, hi) = self.model.count(hit.iter().copied(), t0, t1);
        if !(lo..=hi).contains(&n) {
            return Err(self.fail(format!("{what} returned {n}, expected {lo}..={hi}")));
        }
        for k in hit {
            self.model.entries.remove(&k);
        }
        Ok(())
    }

    pub(super) async fn apply(&mut self) -> Check {
        let c = self.cache.clone();
        match self.op.clone() {
            Op::Set(w) => {
                let value = self.model.next_value;
                self.set(&w, value).await.map_err(|e| self.fail(e))?;
                if matches!(w.via, Via::Scope) && path_of(w.key).is_some() && self.legacy() {
                    // A scoped write in Migrate mode deletes the part's twin.
                    self.model.legacy.remove(&w.key);
                }
                self.record(std::slice::from_ref(&w)).await;
            }
            Op::SetMany(ws) => {
                let first = self.model.next_value;
                let items = ws
                    .iter()
                    .zip(first..)
                    .map(|(w, v)| (KEYS[w.key], v, options(w)));
                c.set_many(items).await.map_err(|e| self.fail(e))?;
                self.record(&ws).await;
            }
            Op::Delete(key, via) => {
                let scoped = matches!(via, Via::Scope) && path_of(key).is_some();
                let twin = scoped && self.model.legacy.remove(&key).is_some();
                self.removal(vec![key], "delete", async {
                    // A scoped delete also deletes the legacy key; `true`
                    // if either existed.
                    let existed = delete_via(&c, key, via).await?;
                    Ok(u64::from(existed && !twin))
                })
                .await
                .or_else(|e| if twin { Ok(()) } else { Err(e) })?;
                self.model.entries.remove(&key);
            }
            Op::DeleteMany(keys) => {
                let distinct: Vec<usize> = keys
                    .iter()
                    .copied()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let run = c.delete_many(keys.iter().map(|k| KEYS[*k]));
                self.removal(distinct, "delete_many", run).await?;
            }
            Op::Invalidate(tags) => {
                let hit: Vec<usize> = (0..KEYS.len())
                    .filter(|k| tags.iter().any(|t| self.model.has(*k, *t)))
                    .collect();
                // A live group carrying the tag is dropped and counted too.
                let group = u64::from(tags.contains(&GROUP_TAG) && self.model.group);
                if tags.contains(&GROUP_TAG) {
                    self.model.group = false;
                }
                let run = c.invalidate_tags(tags.iter().map(|t| TAGS[*t]));
                self.removal(hit, "invalidate_tags", async {
                    Ok(run.await?.saturating_sub(group))
                })
                .await?;
            }
            Op::InvalidatePrefix(p) => {
                let hit: Vec<usize> = (0..KEYS.len()).filter(|k| under(*k, p, true)).collect();
                let pre = prefix(p);
                let run = c.invalidate_prefix(&pre);
                self.removal(hit, "invalidate_prefix", run).await?;
            }
            Op::ScopeClear(p) => {
                let hit: Vec<usize> = (0..KEYS.len()).filter(|k| under(*k, p, false)).collect();
                // The owner's legacy keys are deleted first, and counted.
                let twins: Vec<usize> = self
                    .model
                    .legacy
                    .keys()
                    .copied()
                    .filter(|k| legacy_owner(*k) == p)
                    .collect();
                for k in &twins {
                    self.model.legacy.remove(k);
                }
                let twins = twins.len() as u64;
                let scope = c.scope(prefix(p)).map_err(|e| self.fail(e))?;
                self.removal(hit, "scope clear", async move {
                    Ok(scope.clear().await?.saturating_sub(twins))
                })
                .await?;
            }
            Op::Clear => {
                let hit: Vec<usize> = (0..KEYS.len()).collect();
                let group = u64::from(self.model.group);
                self.model.group = false;
                self.removal(hit, "clear", async {
                    Ok(c.clear().await?.saturating_sub(group))
                })
                .await?;
            }
            Op::GroupSet => {
                self.group()
                    .set("f", &true)
                    .await
                    .map_err(|e| self.fail(e))?;
                self.model.group = true;
            }
            Op::GroupRefresh => {
                self.group().clear().await.map_err(|e| self.fail(e))?;
                self.model.group = false;
            }
            Op::LegacyPut(key) => {
                let value = self.model.next_value;
                self.model.next_value += 1;
                let con = self.con.as_mut().unwrap();
                let _: () = redis::cmd("SET")
                    .arg(legacy_name(key))
                    .arg(msgpack(value))
                    .arg("PX")
                    .arg(600_000)
                    .query_async(con)
                    .await
                    .unwrap();
                self.model.legacy.insert(key, value);
            }
            Op::ScopeKeys(p) => {
                let scope = c.scope(prefix(p)).map_err(|e| self.fail(e))?;
                let keys = scope.keys().collect().await.map_err(|e| self.fail(e))?;
                let moved: Vec<usize> = self
                    .model
                    .legacy
                    .keys()
                    .copied()
                    .filter(|k| legacy_owner(*k) == p)
                    .collect();
                for k in moved {
                    self.migrate(k).await;
                }
                let listed: Vec<Vec<u8>> =
                    keys.iter().map(|p| p.to_string().into_bytes()).collect();
                self.judge_list(
                    &listed,
                    |k| under(k, p, false),
                    &format!("scope({}).keys with legacy", prefix(p)),
                )?;
            }
            Op::Wait => tokio::time::sleep(Duration::from_millis(100)).await,
            Op::Prune => {
                let t0 = self.now().await;
                let report = c.prune().await.map_err(|e| self.fail(e))?;
                if !report.complete {
                    return Err(self.fail(format!("prune did not complete: {report:?}")));
                }
                if self.con.is_some() {
                    self.check_pruned(t0).await?;
                }
            }
        }
        Ok(())
    }
}
