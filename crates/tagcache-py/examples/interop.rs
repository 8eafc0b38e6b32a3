//! The Rust side of the Python interop tests (`tests/test_interop.py`):
//! writes typed and raw entries for Python to read, reads and invalidates
//! what Python wrote, and checks what Python invalidated is gone.
//!
//! `interop <write|read|gone> <redis-url> <namespace>`; exits 1 with a
//! message on stderr when an outcome differs from the expected one.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tagcache::{Cache, KeyPath, SetOptions};

/// A typed value both sides know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    name: String,
    age: u32,
    emails: Vec<String>,
    score: f64,
    active: bool,
    nickname: Option<String>,
    address: Address,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Address {
    city: String,
}

fn ensure(ok: bool, what: impl std::fmt::Display) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("mismatch: {what}"))
    }
}

async fn write(cache: &Cache) -> Result<(), Box<dyn std::error::Error>> {
    let opts = SetOptions::new()
        .ttl(Duration::from_secs(600))
        .tags(["from:rust"]);
    let grace = Profile {
        name: "Grace".into(),
        age: 85,
        emails: vec!["grace@navy.example".into()],
        score: 9.5,
        active: true,
        nickname: None,
        address: Address {
            city: "Arlington".into(),
        },
    };
    cache
        .set("rust:profile", &grace, &opts.clone().tag("kind:profile"))
        .await?;
    cache.set_bytes("rust:raw", b"\x00\x01rust", &opts).await?;
    cache.set("rust:list", &vec![1i64, -2, 3], &opts).await?;
    cache
        .set_path(
            &KeyPath::from_parts(["org", "7", "prj", "3"]),
            &"pipeline-3",
            &opts,
        )
        .await?;
    cache
        .scope(["dsr", "pr-9"])?
        .set(
            "identity:email",
            &"x@example.com",
            &SetOptions::new().ttl(Duration::from_secs(600)),
        )
        .await?;
    println!("wrote 5 entries");
    Ok(())
}

async fn read(cache: &Cache) -> Result<(), Box<dyn std::error::Error>> {
    let ada: Option<Profile> = cache.get("py:profile").await?;
    let expected = Profile {
        name: "Ada".into(),
        age: 36,
        emails: vec!["ada@example.com".into()],
        score: 1.5,
        active: false,
        nickname: Some("countess".into()),
        address: Address {
            city: "London".into(),
        },
    };
    ensure(
        ada.as_ref() == Some(&expected),
        format!("py:profile read {ada:?}"),
    )?;
    let raw = cache.get_bytes("py:raw").await?;
    ensure(raw.as_deref() == Some(b"\xffpy".as_slice()), "py:raw")?;
    let counts: Option<Vec<u64>> = cache.get("py:counts").await?;
    ensure(counts == Some(vec![1, 2, 3]), "py:counts")?;
    let path: Option<String> = cache
        .get_path(&KeyPath::from_parts(["org", "8", "prj", "1"]))
        .await?;
    ensure(path.as_deref() == Some("py-pipeline"), "py path")?;
    let mut keys = cache.keys_with_tag("from:py").collect().await?;
    keys.sort();
    let expected_keys: Vec<Vec<u8>> = ["org:8:prj:1", "py:counts", "py:profile", "py:raw"]
        .iter()
        .map(|k| k.as_bytes().to_vec())
        .collect();
    ensure(keys == expected_keys, "keys_with_tag(from:py)")?;
    let removed = cache.invalidate_tag("from:py").await?;
    ensure(removed == 4, format!("invalidated {removed}"))?;
    println!("read and invalidated {removed} entries");
    Ok(())
}

async fn gone(cache: &Cache) -> Result<(), Box<dyn std::error::Error>> {
    ensure(
        cache.get::<Profile>("rust:profile").await?.is_none(),
        "rust:profile",
    )?;
    ensure(cache.get_bytes("rust:raw").await?.is_none(), "rust:raw")?;
    ensure(
        cache.keys_with_tag("from:rust").collect().await?.is_empty(),
        "from:rust",
    )?;
    let scope = cache.scope(["dsr", "pr-9"])?;
    ensure(scope.keys().collect().await?.is_empty(), "scope pr-9")?;
    println!("gone");
    Ok(())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, mode, url, namespace] = args.as_slice() else {
        eprintln!("usage: interop <write|read|gone> <redis-url> <namespace>");
        std::process::exit(2);
    };
    let outcome = async {
        let cache = Cache::builder(url.as_str())
            .namespace(namespace.as_str())
            .build()
            .await?;
        match mode.as_str() {
            "write" => write(&cache).await,
            "read" => read(&cache).await,
            "gone" => gone(&cache).await,
            other => Err(format!("unknown mode {other}").into()),
        }
    }
    .await;
    if let Err(e) = outcome {
        eprintln!("interop {mode}: {e}");
        std::process::exit(1);
    }
}
