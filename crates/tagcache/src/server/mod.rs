//! Talking to Redis: the connection and script calls (`conn`), the circuit
//! breaker (`breaker`) and the eviction-policy check (`policy`).

pub(crate) mod breaker;
pub(crate) mod conn;
pub(crate) mod policy;
