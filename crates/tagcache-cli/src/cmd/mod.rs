//! One module per subcommand; each turns its arguments into library calls
//! and hands results to the output layer.

pub mod bench;
pub mod clear;
pub mod del;
pub mod demo;
pub mod doctor;
pub mod get;
pub mod invalidate;
pub mod keys;
pub mod migrate;
pub mod prune;
pub mod set;
pub mod stats;
pub mod tags;

use std::ffi::OsString;
use std::future::Future;
use std::process::ExitCode;

use clap::Args;
use tagcache::{Cache, CacheBuilder, ErrorKind, EvictionCheck};

use crate::cli::{Command, GlobalArgs};
use crate::error::{CliError, Result};
use crate::interrupt::Interrupt;
use crate::target::Target;

/// What every subcommand gets besides its own arguments.
#[derive(Debug)]
pub struct Context {
    /// The global options.
    pub global: GlobalArgs,
    /// Ctrl-C, for commands that clean up before they stop.
    pub interrupt: Interrupt,
}

/// `--json` as a subcommand's own flag (`tagcache del --json k`), the same
/// as the global one given before the subcommand (`tagcache --json del k`).
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct JsonFlag {
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

impl Context {
    /// Whether results go out as JSON.
    pub fn json(&self, flag: JsonFlag) -> bool {
        self.global.json || flag.json
    }

    /// Connects to the Redis named by `--url` / `REDIS_URL`, on the
    /// existing namespace of `--namespace`, with the bucket count its meta
    /// key records. Nothing is written to open it, and a namespace that
    /// does not exist is "not found" (exit 1): reading or removing from it
    /// must not create it (nor pin its bucket count before the application
    /// creates it). Operator commands never start a private server: they
    /// exist to look at a real one.
    ///
    /// `eviction` says what an `allkeys-*` policy does: `set` and
    /// `migrate` pass `Refuse` (the library's default for writers),
    /// commands that only read or remove pass `Warn` (an operator must be
    /// able to repair a cache whatever its server's policy), `doctor` and
    /// `stats` pass `Ignore` and report the policy themselves.
    ///
    /// # Errors
    /// No URL, a namespace that does not exist, or anything
    /// `CacheBuilder::build` refuses, as one line.
    pub async fn cache(&self, eviction: EvictionCheck) -> Result<(Target, Cache)> {
        self.open(eviction, |b| b.existing_namespace()).await
    }

    /// As [`Context::cache`], for commands that write entries: a namespace
    /// that does not exist is created, with `buckets` buckets (`None`: the
    /// library's default, 1 on a single server and 16 on a cluster); an
    /// existing one is used with the bucket count it records.
    ///
    /// # Errors
    /// As [`Context::cache`], but for a missing namespace.
    pub async fn cache_for_writing(
        &self,
        eviction: EvictionCheck,
        buckets: Option<u16>,
    ) -> Result<(Target, Cache)> {
        self.open(eviction, |b| {
            let b = b.adopt_buckets();
            match buckets {
                Some(n) => b.buckets(n),
                None => b,
            }
        })
        .await
    }

    async fn open(
        &self,
        eviction: EvictionCheck,
        setup: impl FnOnce(CacheBuilder) -> CacheBuilder,
    ) -> Result<(Target, Cache)> {
        let target = Target::given(self.global.url.as_deref())?;
        let builder = Cache::builder(target.url())
            .namespace(&self.global.namespace)
            // A one-shot command: no background sweep, and an operator
            // would rather wait than fail on a busy server.
            .auto_sweep(None)
            .response_timeout(std::time::Duration::from_secs(2))
            .eviction_check(eviction);
        let cache = setup(builder)
            .build()
            .await
            .map_err(|e| self.cannot_open(&target, e))?;
        Ok((target, cache))
    }

    /// Explains why the namespace could not be opened on `target`.
    pub fn cannot_open(&self, target: &Target, e: tagcache::Error) -> CliError {
        if e.kind() == ErrorKind::NamespaceNotFound {
            return CliError::not_found(format!(
                "namespace {} does not exist (nothing has been written to it)",
                self.global.namespace
            ));
        }
        target.cannot_connect(e)
    }

    /// Runs `work` until it ends or Ctrl-C is pressed.
    pub async fn until_interrupted<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::select! {
            out = work => out,
            () = self.interrupt.requested() => Err(CliError::interrupted()),
        }
    }

    /// Whether progress displays stay hidden (`-q`).
    pub fn quiet(&self) -> bool {
        self.global.quiet
    }
}

/// A key or tag given on the command line, as the bytes of the argument
/// (on Unix any bytes, not only UTF-8).
pub fn arg_bytes(arg: &OsString) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    arg.as_bytes().to_vec()
}

/// Runs one subcommand. The operator commands stop at the first Ctrl-C:
/// they have nothing to clean up, and what they leave half done (an
/// invalidation, a sweep) is resumable by design. `migrate` watches
/// `ctx.interrupt` itself, to stop between steps and say how far it got;
/// the demo and the benchmark clean up first, watching it too.
pub async fn run(command: Command, ctx: &Context) -> Result<ExitCode> {
    let watches_interrupt = matches!(
        command,
        Command::Migrate(_) | Command::Demo(_) | Command::Bench(_)
    );
    let work = dispatch(command, ctx);
    if watches_interrupt {
        work.await
    } else {
        ctx.until_interrupted(work).await
    }
}

async fn dispatch(command: Command, ctx: &Context) -> Result<ExitCode> {
    match command {
        Command::Set(args) => set::run(args, ctx).await,
        Command::Get(args) => get::run(args, ctx).await,
        Command::Del(args) => del::run(args, ctx).await,
        Command::Tags(args) => tags::run(args, ctx).await,
        Command::Keys(args) => keys::run(args, ctx).await,
        Command::Invalidate(args) => invalidate::run(args, ctx).await,
        Command::Prune(args) => prune::run(args, ctx).await,
        Command::Clear(args) => clear::run(args, ctx).await,
        Command::Migrate(args) => migrate::run(args, ctx).await,
        Command::Stats(args) => stats::run(args, ctx).await,
        Command::Doctor(args) => doctor::run(args, ctx).await,
        Command::Demo(args) => demo::run(args, ctx).await,
        Command::Bench(args) => bench::run(args, ctx).await,
    }
}
