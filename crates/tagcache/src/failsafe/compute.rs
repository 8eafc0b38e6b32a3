//! Fail-safe read-through: the loader's value is returned whatever Redis
//! does; it is stored only when Redis answers and no fence refuses it.

use std::future::Future;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};

use super::FailSafeCache;
use crate::cache::SetOptions;
use crate::error::{Error, ErrorKind};
use crate::layout::codec;
use crate::layout::codec::is_stale;
use crate::layout::keys::validate_key;
use crate::readthrough::compute::{serve_stale_on_failure, ComputeError, Computed, Source};
use crate::readthrough::context::LoadContext;
use crate::readthrough::refresh::refresh_due;

impl FailSafeCache {
    /// Read-through that never fails because of Redis: on a bypass the
    /// loader runs and its value is returned without being stored
    /// ([`Source::LoadedNotStored`]). Otherwise as
    /// [`Cache::get_or_compute`](crate::Cache::get_or_compute).
    ///
    /// # Errors
    /// The loader's error, or invalid input.
    pub async fn get_or_compute<T, E, F, Fut>(
        &self,
        key: impl AsRef<[u8]>,
        opts: &SetOptions,
        loader: F,
    ) -> std::result::Result<Computed<T>, ComputeError<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        self.get_or_compute_with(key, opts, |_| loader()).await
    }

    // The `_with` forms repeat their siblings' signatures on purpose: each is public API.
    /// [`FailSafeCache::get_or_compute`] whose loader gets a
    /// [`LoadContext`] (adaptive TTL, grace and tags, or "do not cache";
    /// see [`Cache::get_or_compute_with`](crate::Cache::get_or_compute_with)).
    ///
    /// # Errors
    /// The loader's error, or invalid input (options the loader set
    /// included).
    pub async fn get_or_compute_with<T, E, F, Fut>(
        &self,
        key: impl AsRef<[u8]>,
        opts: &SetOptions,
        loader: F,
    ) -> std::result::Result<Computed<T>, ComputeError<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(LoadContext) -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        let result = self.compute_with(key.as_ref(), opts, loader).await;
        crate::readthrough::compute::count_source(self.cache.namespace(), &result);
        result
    }

    async fn compute_with<T, E, F, Fut>(
        &self,
        key: &[u8],
        opts: &SetOptions,
        loader: F,
    ) -> std::result::Result<Computed<T>, ComputeError<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(LoadContext) -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        let mark = self.cache.journal().mark();
        let read = self
            .bounded("get_or_compute", Some(key), self.cache.get_with_time(key))
            .await?;
        let (cached, since) = match read {
            Ok(found) => found,
            Err(_) => return self.load_only(key, opts, loader).await,
        };
        let mut stale = None;
        if let Some(raw) = cached {
            let Ok(d) = codec::decode_entry(&raw) else {
                return self.load_only(key, opts, loader).await;
            };
            let tags = codec::parse_tags(d.tag_section).unwrap_or_default();
            if self.cache.journal().covers_read(mark, key, &tags) {
                // A pending invalidation covers it: neither serve nor store.
                return self.load_only(key, opts, loader).await;
            }
            if is_stale(&d, since / 1000) {
                stale = Some(raw.clone());
            } else if let Ok(value) = self.cache.decode::<T>(&raw) {
                return Ok(Computed {
                    value,
                    source: Source::Hit,
                });
            }
        }
        let fresh = self
            .cache
            .fly(
                key,
                opts,
                since,
                loader,
                Some(self.timeout),
                stale.is_some(),
            )
            .await;
        serve_stale_on_failure(&self.cache, fresh, stale)
    }

    /// Read-through with a soft timeout and eager refresh: like
    /// [`FailSafeCache::get_or_compute`], but
    /// - when the entry is stale (in its [grace period](SetOptions::grace))
    ///   and the loader has not finished within `soft_timeout`, the stale
    ///   value is returned at once ([`Source::Stale`]) while the loader
    ///   keeps running in the background and stores its value when done;
    /// - when a hit finds the entry due for an [eager
    ///   refresh](SetOptions::eager_refresh), the value is returned and the
    ///   loader refreshes it in the background (as
    ///   [`Cache::get_or_refresh`](crate::Cache::get_or_refresh)).
    ///
    /// # Errors
    /// The loader's error when there is no stale value, or invalid input.
    pub async fn get_or_refresh<T, E, F, Fut>(
        &self,
        key: impl AsRef<[u8]>,
        opts: &SetOptions,
        soft_timeout: Duration,
        loader: F,
    ) -> std::result::Result<Computed<T>, ComputeError<E>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<T, E>> + Send + 'static,
    {
        self.get_or_refresh_with(key, opts, soft_timeout, |_| loader())
            .await
    }

    /// [`FailSafeCache::get_or_refresh`] whose loader gets a
    /// [`LoadContext`].
    ///
    /// # Errors
    /// As [`FailSafeCache::get_or_refresh`].
    pub async fn get_or_refresh_with<T, E, F, Fut>(
        &self,
        key: impl AsRef<[u8]>,
        opts: &SetOptions,
        soft_timeout: Duration,
        loader: F,
    ) -> std::result::Result<Computed<T>, ComputeError<E>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: Send + 'static,
        F: FnOnce(LoadContext) -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<T, E>> + Send + 'static,
    {
        let result = self
            .refresh_with(key.as_ref(), opts, soft_timeout, loader)
            .await;
        crate::readthrough::compute::count_source(self.cache.namespace(), &result);
        result
    }

    async fn refresh_with<T, E, F, Fut>(
        &self,
        key: &[u8],
        opts: &SetOptions,
        soft_timeout: Duration,
        loader: F,
    ) -> std::result::Result<Computed<T>, ComputeError<E>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: Send + 'static,
        F: FnOnce(LoadContext) -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<T, E>> + Send + 'static,
    {
        let key = key.to_vec();
        validate_key(&key)?;
        let permille = self.cache.eager_permille(opts);
        let mark = self.cache.journal().mark();
        let read = self
            .bounded(
                "get_or_refresh",
                Some(&key),
                self.cache.read_for_refresh(&key, permille > 0),
            )
            .await?;
        let (stale, since) = match read {
            Ok((Some(raw), since, pttl)) => match codec::decode_entry(&raw) {
                Ok(d) => {
                    let tags = codec::parse_tags(d.tag_section).unwrap_or_default();
                    if self.cache.journal().covers_read(mark, &key, &tags) {
                        return self.load_only(&key, opts, loader).await;
                    }
                    if !is_stale(&d, since / 1000) {
                        if let Ok(value) = self.cache.decode::<T>(&raw) {
                            let now_ms = since / 1000;
                            let ttl = self.cache.call_ttl_ms(opts);
                            if refresh_due(&d, now_ms, pttl, ttl, permille) {
                                self.cache.refresh_in_background(
                                    &key,
                                    opts,
                                    since,
                                    loader,
                                    Some(self.timeout),
                                );
                            }
                            return Ok(Computed {
                                value,
                                source: Source::Hit,
                            });
                        }
                        return self.compute_with(&key, opts, loader).await;
                    }
                    (raw.clone(), since)
                }
                Err(_) => return self.compute_with(&key, opts, loader).await,
            },
            _ => return self.compute_with(&key, opts, loader).await,
        };
        self.reload_stale(key, opts, since, stale, soft_timeout, loader)
            .await
    }

    /// The entry is stale (in its grace period): the loader runs in a task;
    /// after `soft_timeout` (or when it fails) the stale value is served,
    /// and a loader still running stores its value when done.
    async fn reload_stale<T, E, F, Fut>(
        &self,
        key: Vec<u8>,
        opts: &SetOptions,
        since: u64,
        stale: bytes::Bytes,
        soft_timeout: Duration,
        loader: F,
    ) -> std::result::Result<Computed<T>, ComputeError<E>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: Send + 'static,
        F: FnOnce(LoadContext) -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<T, E>> + Send + 'static,
    {
        let (cache, opts, timeout, task_key) =
            (self.cache.clone(), opts.clone(), self.timeout, key);
        let refresh = tokio::spawn(async move {
            cache
                .fly(&task_key, &opts, since, loader, Some(timeout), true)
                .await
        });
        let fresh = match tokio::time::timeout(soft_timeout, refresh).await {
            Ok(Ok(fresh)) => fresh,
            // The loader panicked, or is still running (it stores its value
            // when done): serve the stale one now.
            Ok(Err(_)) | Err(_) => Err(ComputeError::Cache(Error::new(
                ErrorKind::Timeout,
                "soft timeout",
            ))),
        };
        match fresh {
            Ok(computed) => Ok(computed),
            Err(e) => match self.cache.decode(&stale) {
                Ok(value) => {
                    let reason = match e {
                        ComputeError::Loader(_) => "loader_error",
                        ComputeError::Cache(_) => "soft_timeout",
                    };
                    crate::observe::count_stale(self.cache.namespace(), reason);
                    Ok(Computed {
                        value,
                        source: Source::Stale,
                    })
                }
                Err(e) => Err(e.into()),
            },
        }
    }

    pub(super) async fn load_only<T, E, F, Fut>(
        &self,
        key: &[u8],
        opts: &SetOptions,
        loader: F,
    ) -> std::result::Result<Computed<T>, ComputeError<E>>
    where
        F: FnOnce(LoadContext) -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        let ctx = LoadContext::new(key, opts, false, false);
        let started = std::time::Instant::now();
        let loaded = loader(ctx.clone()).await;
        crate::observe::record_loader(
            self.cache.namespace(),
            loaded.is_ok(),
            started.elapsed().as_secs_f64(),
        );
        let value = loaded.map_err(ComputeError::Loader)?;
        let source = if ctx.outcome().is_some() {
            Source::LoadedNotStored
        } else {
            Source::Uncached
        };
        Ok(Computed { value, source })
    }
}
