//! Talking to Redis: the connection and script calls (`conn`), the circuit
//! breaker (`breaker`), the eviction-policy check (`policy`) and Redis'
//! clock as seen from this process (`clock`).

pub(crate) mod breaker;
pub(crate) mod clock;
pub(crate) mod conn;
pub(crate) mod policy;
