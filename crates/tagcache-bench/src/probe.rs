//! The stall probe (the test kit's, shared with the demo): a thread of its
//! own, on a connection of its own, that sends PING every millisecond and
//! records how long each answer took. Its longest wait is the longest time
//! another client of the server would have been blocked.

pub use tagcache_testkit::{StallProbe as Probe, Stalls};
