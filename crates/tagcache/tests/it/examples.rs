//! The situation examples, run against a private server by the test suite.

use tagcache_testkit::RedisServer;

// Each example brings its own copy of the fixture for its `main`.
#[allow(clippy::duplicate_mod)]
#[path = "../../examples/pipeline_metadata.rs"]
mod pipeline_metadata;
#[allow(clippy::duplicate_mod)]
#[path = "../../examples/protected_branches.rs"]
mod protected_branches;

#[tokio::test]
async fn pipeline_metadata_example_checks_out() {
    let server = RedisServer::start();
    pipeline_metadata::run(&server.url()).await.unwrap();
}

#[tokio::test]
async fn protected_branches_example_checks_out() {
    let server = RedisServer::start();
    protected_branches::run(&server.url()).await.unwrap();
}
