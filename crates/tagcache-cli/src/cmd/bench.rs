//! `tagcache bench`: the benchmark lives in the `tagcache-bench` crate;
//! this resolves the server (`--url` or a private one) and prints what it
//! returns.

use std::process::ExitCode;

pub use tagcache_bench::BenchArgs;

use crate::cmd::Context;
use crate::error::{CliError, Result};
use crate::output;
use crate::target::Target;

/// Runs the benchmark; exit 0 whatever the goals say, 2 on errors.
pub async fn run(args: BenchArgs, ctx: &Context) -> Result<ExitCode> {
    let env = tagcache_bench::Env {
        namespace: ctx.global.namespace.clone(),
        quiet: ctx.global.quiet || ctx.global.verbose > 0,
        json: ctx.global.json,
    };
    tagcache_bench::check(&args, &env).map_err(bench_error)?;
    let target = Target::given_or_private(ctx.global.url.as_deref()).await?;
    let on = tagcache_bench::Target::new(target.url(), target.shown(), target.is_private());
    let text = tagcache_bench::run(args, &env, &on, || ctx.interrupt.requested())
        .await
        .map_err(bench_error)?;
    if !text.is_empty() {
        output::print(&text);
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_error(e: tagcache_bench::BenchError) -> CliError {
    if e.is_interrupted() {
        CliError::interrupted()
    } else {
        CliError::error(e.to_string())
    }
}
