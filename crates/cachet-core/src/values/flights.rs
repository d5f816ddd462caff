//! Per-key locks for `get_or_compute`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Per-key locks for [`Cache::get_or_compute`]: the first caller computes,
/// the others wait on the lock (a notification, not a poll) and then find
/// the value.
#[derive(Debug, Default)]
pub(crate) struct Flights {
    locks: Mutex<HashMap<String, Arc<async_lock::Mutex<()>>>>,
}

/// A caller's hold on a key's lock; the last one out removes it.
pub(super) struct Flight<'a> {
    flights: &'a Flights,
    key: &'a str,
    pub(super) lock: Arc<async_lock::Mutex<()>>,
}

impl Flights {
    /// The heap the per-key locks of computations in flight hold.
    pub(crate) fn heap_bytes(&self) -> u64 {
        let locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = (std::mem::size_of::<(String, Arc<async_lock::Mutex<()>>)>() + 1) as u64;
        let keys: u64 = locks.keys().map(|key| key.capacity() as u64).sum();
        locks.capacity() as u64 * slot
            + keys
            + locks.len() as u64 * crate::weight::shared::<async_lock::Mutex<()>>()
    }

    pub(super) fn join<'a>(&'a self, key: &'a str) -> Flight<'a> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        let lock = Arc::clone(locks.entry(key.to_owned()).or_default());
        Flight {
            flights: self,
            key,
            lock,
        }
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut locks = self
            .flights
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Clones are only made under this lock: two references (the map's
        // and ours) mean nobody else waits on this key.
        if Arc::strong_count(&self.lock) == 2 {
            locks.remove(self.key);
        }
    }
}
