//! The in-process single-flight table: which keys have a load in flight
//! in this process, and the channel their followers wait on.
//!
//! The table is part of the cache handle's state (`cache.rs` keeps one per
//! handle), so it lives apart from the read-throughs that use it
//! (`compute.rs`, `refresh.rs`): it names nothing of the crate, and the
//! handle can hold it without depending on the read-through code.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// What a loader's leader hands to the callers waiting on it: the payload
/// bytes, or `None` when it failed or was cancelled (they load themselves).
pub(super) type Outcome = Option<Vec<u8>>;

/// In-flight loads of this process, by key.
#[derive(Debug, Default)]
pub(crate) struct Flights {
    loads: Mutex<HashMap<Vec<u8>, watch::Receiver<Option<Outcome>>>>,
}

pub(super) enum Role {
    Leader(watch::Sender<Option<Outcome>>),
    Follower(watch::Receiver<Option<Outcome>>),
}

impl Flights {
    pub(super) fn join(&self, key: &[u8]) -> Role {
        let mut loads = self.loads.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = loads.get(key) {
            return Role::Follower(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        loads.insert(key.to_vec(), rx);
        Role::Leader(tx)
    }

    /// Whether a load of `key` is in flight in this process.
    pub(super) fn is_flying(&self, key: &[u8]) -> bool {
        self.loads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(key)
    }

    /// Leads a load of `key` unless one is in flight already.
    pub(super) fn try_lead<'a>(&'a self, key: &'a [u8]) -> Option<Landing<'a>> {
        match self.join(key) {
            Role::Leader(tx) => Some(Landing::new(self, key, tx)),
            Role::Follower(_) => None,
        }
    }

    fn leave(&self, key: &[u8]) {
        self.loads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

/// Removes the flight and wakes followers even when the leader's future is
/// dropped midway.
pub(super) struct Landing<'a> {
    flights: &'a Flights,
    key: &'a [u8],
    tx: watch::Sender<Option<Outcome>>,
    pub(super) outcome: Outcome,
}

impl<'a> Landing<'a> {
    /// The landing of the flight `join` made this caller lead.
    pub(super) fn new(
        flights: &'a Flights,
        key: &'a [u8],
        tx: watch::Sender<Option<Outcome>>,
    ) -> Self {
        Self {
            flights,
            key,
            tx,
            outcome: None,
        }
    }
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        self.flights.leave(self.key);
        let _ = self.tx.send(Some(self.outcome.take()));
    }
}
