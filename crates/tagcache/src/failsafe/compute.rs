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

impl FailSafeCache {
    /// Read-through that never fails because of Redis: on a bypass the
    /// loader runs and its value is returned without being stored
    /// ([`Source::LoadedNotStored`]). Otherwise as
    /// [`Cache::get_or_compute`].
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
        let key = key.as_ref();
        let read = self
            .bounded("get_or_compute", Some(key), self.cache.get_with_time(key))
            .await?;
        let (cached, since) = match read {
            Ok(found) => found,
            Err(_) => return self.load_only(loader).await,
        };
        let mut stale = None;
        if let Some(raw) = cached {
            let Ok(d) = codec::decode_entry(&raw) else {
                return self.load_only(loader).await;
            };
            let tags = codec::parse_tags(d.tag_section).unwrap_or_default();
            if self.cache.journal().covers(key, &tags) {
                // A pending invalidation covers it: neither serve nor store.
                return self.load_only(loader).await;
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
            .fly(key, opts, since, loader, Some(self.timeout))
            .await;
        serve_stale_on_failure(&self.cache, fresh, stale)
    }

    /// Read-through with a soft timeout: like
    /// [`FailSafeCache::get_or_compute`], but when the entry is stale (in
    /// its [grace period](SetOptions::grace)) and the loader has not
    /// finished within `soft_timeout`, the stale value is returned at once
    /// ([`Source::Stale`]) while the loader keeps running in the background
    /// and stores its value when done.
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
        let key = key.as_ref().to_vec();
        validate_key(&key)?;
        let read = self
            .bounded("get_or_refresh", Some(&key), self.cache.get_with_time(&key))
            .await?;
        let (stale, since) = match read {
            Ok((Some(raw), since)) => match codec::decode_entry(&raw) {
                Ok(d) if is_stale(&d, since / 1000) => {
                    let tags = codec::parse_tags(d.tag_section).unwrap_or_default();
                    if self.cache.journal().covers(&key, &tags) {
                        return self.load_only(loader).await;
                    }
                    (raw.clone(), since)
                }
                _ => return self.get_or_compute(&key, opts, loader).await,
            },
            _ => return self.get_or_compute(&key, opts, loader).await,
        };
        let (cache, opts, timeout, task_key) =
            (self.cache.clone(), opts.clone(), self.timeout, key.clone());
        let refresh = tokio::spawn(async move {
            cache
                .fly(&task_key, &opts, since, loader, Some(timeout))
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
            Err(_) => match self.cache.decode(&stale) {
                Ok(value) => Ok(Computed {
                    value,
                    source: Source::Stale,
                }),
                Err(e) => Err(e.into()),
            },
        }
    }

    pub(super) async fn load_only<T, E, F, Fut>(
        &self,
        loader: F,
    ) -> std::result::Result<Computed<T>, ComputeError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        let value = loader().await.map_err(ComputeError::Loader)?;
        Ok(Computed {
            value,
            source: Source::LoadedNotStored,
        })
    }
}
