//! The `tagcache` command: operator CLI, demo and benchmark.

fn main() {}
