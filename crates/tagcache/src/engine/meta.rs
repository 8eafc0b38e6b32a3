//! The namespace's meta key at `build`: read it, and create it only when
//! the builder may.
//!
//! The meta key records the layout version and the bucket count a
//! namespace was created with. `build` reads it first (`HMGET`, no write),
//! so opening an existing namespace never writes; only a namespace that
//! does not exist yet is created (`meta.lua`, `HSETNX`, so two clients
//! creating it at once agree on one bucket count).

use crate::error::{Error, ErrorKind, Result};
use crate::layout::keys::KeySpace;
use crate::layout::keys::LAYOUT_VERSION;
use crate::scripts::{ScriptCall, SCRIPTS};
use crate::server::conn::Conn;

/// How `build` treats the namespace's meta key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Setup {
    /// Create the namespace with the configured bucket count when it does
    /// not exist; refuse one recorded with another count.
    #[default]
    Create,
    /// Use the bucket count the meta records; create the namespace with the
    /// configured count when it does not exist.
    Adopt,
    /// Use the bucket count the meta records; never write; fail with
    /// [`ErrorKind::NamespaceNotFound`] when the namespace does not exist.
    Existing,
}

/// What the meta key holds: `(layout, buckets)`, each `None` when absent.
type Recorded = (Option<String>, Option<String>);

/// Reads (and per `setup`, creates) the namespace's meta; returns the key
/// space to use: `space` itself, or one with the recorded bucket count.
pub(crate) async fn open(conn: &Conn, space: KeySpace, setup: Setup) -> Result<KeySpace> {
    let meta = space.meta();
    let mut recorded: Recorded = conn
        .query(redis::cmd("HMGET").arg(&meta).arg("layout").arg("buckets"))
        .await?;
    if recorded == (None, None) {
        if setup == Setup::Existing {
            return Err(Error::new(
                ErrorKind::NamespaceNotFound,
                format!(
                    "namespace {} does not exist (nothing has been written to it)",
                    space.namespace()
                ),
            ));
        }
        let mut call = ScriptCall::new(&SCRIPTS.meta, &[meta]);
        call.arg(LAYOUT_VERSION).arg(space.buckets());
        // Another client may have created it meanwhile: HSETNX keeps the
        // first count, and this answers what is stored.
        recorded = conn.run(&call).await?;
    }
    check(space, recorded, setup)
}

fn check(space: KeySpace, (layout, buckets): Recorded, setup: Setup) -> Result<KeySpace> {
    let layout = layout.unwrap_or_default();
    if layout != LAYOUT_VERSION.to_string() {
        return Err(Error::new(
            ErrorKind::Layout,
            format!(
                "namespace {} has layout version {layout}, this tagcache writes {LAYOUT_VERSION}",
                space.namespace()
            ),
        ));
    }
    let buckets = buckets.unwrap_or_default();
    if buckets == space.buckets().to_string() {
        return Ok(space);
    }
    let recorded = buckets.parse::<u16>().ok().filter(|&n| n > 0);
    match (setup, recorded) {
        (Setup::Adopt | Setup::Existing, Some(n)) => KeySpace::new(space.namespace(), n),
        (Setup::Create, Some(_)) => Err(Error::new(
            ErrorKind::Layout,
            format!(
                "namespace {} was created with {buckets} buckets, the cache is configured with {} \
                 (CacheBuilder::adopt_buckets uses the recorded count)",
                space.namespace(),
                space.buckets()
            ),
        )),
        (_, None) => Err(Error::new(
            ErrorKind::Layout,
            format!(
                "namespace {} records an invalid bucket count {buckets:?}",
                space.namespace()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(layout: &str, buckets: &str) -> Recorded {
        (Some(layout.to_owned()), Some(buckets.to_owned()))
    }

    #[test]
    fn recorded_bucket_counts_are_adopted_or_refused() {
        let v = LAYOUT_VERSION.to_string();
        let one = || KeySpace::new("ns", 1).unwrap();
        assert_eq!(
            check(one(), rec(&v, "1"), Setup::Create).unwrap().buckets(),
            1
        );
        let e = check(one(), rec(&v, "4"), Setup::Create).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Layout);
        for setup in [Setup::Adopt, Setup::Existing] {
            assert_eq!(check(one(), rec(&v, "4"), setup).unwrap().buckets(), 4);
            let e = check(one(), rec(&v, "0"), setup).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Layout);
        }
        let e = check(one(), rec("0", "1"), Setup::Adopt).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Layout);
    }
}
