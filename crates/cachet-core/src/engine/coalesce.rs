//! Step 4, request coalescing: when many requests miss one key at once, a
//! single one goes to the origin (it holds the key's [`Fetch`]) and the others
//! [`Wait`] for it to land — woken by a notification, never by polling.
//!
//! A fetch lands one of three ways, and its waiters act on it:
//!
//! - [`Landing::Stored`]: look the key up again; it is a hit.
//! - [`Landing::NotStored`]: the response could not be shared (private,
//!   `Set-Cookie`, too large, an error): each waiter goes to the origin
//!   itself. The key is marked *hit-for-miss* for the rule's window, so the
//!   requests that follow go straight to the origin instead of queueing.
//! - [`Landing::Abandoned`]: the fetch was dropped (its client went away,
//!   its future was cancelled): the waiters join again and one of them
//!   takes over.
//!
//! Waiting is bounded by the rule's `lock_timeout`, which the adapter
//! enforces with its runtime's timer; this module needs none.

use crate::cache::Cache;
use crate::clock::SharedClock;
use crate::engine::Plan;
use crate::stats::Counters;
use event_listener::Event;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::mem::size_of;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// How many keys the hit-for-miss marks may cover at once: the marks are
/// bounded in memory like everything else.
const HIT_FOR_MISS_KEYS: usize = 10_000;

/// How a fetch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Landing {
    /// The response is in the store: look it up again.
    Stored,
    /// The response was not stored: go to the origin yourself.
    NotStored,
    /// The fetch was dropped before it finished: join again.
    Abandoned,
}

/// A request's place among the requests for its key.
#[derive(Debug)]
pub(crate) enum Turn {
    /// Go to the origin, then [`Fetch::stored`] or [`Fetch::not_stored`].
    Fetch(Fetch),
    /// Another request is fetching the key: wait for it to land.
    Wait(Wait),
}

/// The fetches running now, and the keys whose responses could not be
/// stored lately.
pub(crate) struct Coalescer {
    keys: Mutex<Keys>,
    /// The secret keys are hashed with.
    secret: [u8; 32],
    /// How many fetches have stored their response, for [`Landmark`]s.
    stored: AtomicU64,
    clock: SharedClock,
}

/// How many fetches had stored their response at some moment: taken before
/// a lookup, it tells a request that becomes the fetcher whether its
/// lookup may be out of date. [`begin`](crate::adapter::begin) takes it
/// before the lookup, and the [`Miss`](crate::adapter::Miss) carries both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Landmark(u64);

/// How often expired hit-for-miss marks are swept out, at most.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// A key as the coalescer holds it: a 128-bit keyed hash, so its memory
/// does not grow with the key's length (which clients choose) and clients
/// cannot aim two keys at one slot.
type KeyHash = u128;

/// The coalescer's maps, keyed by [`KeyHash`]es.
type ByKey<V> = HashMap<KeyHash, V, BuildHasherDefault<DigestHasher>>;

/// Hashes a [`KeyHash`] by its low 64 bits. It is already a keyed BLAKE3
/// digest, no easier to aim collisions at than SipHash's keyed output,
/// so hashing it again (six times a miss) is wasted work.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u128` is used; any other input is folded in whole.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u128(&mut self, digest: u128) {
        // Truncation intended: the digest's low half is uniform already.
        self.0 = digest as u64;
    }
}

/// What the coalescer knows per key, under one lock.
#[derive(Default)]
struct Keys {
    running: ByKey<Arc<Flight>>,
    /// Key → until when requests for it skip coalescing.
    hit_for_miss: ByKey<SystemTime>,
    /// When expired marks are next swept out.
    next_sweep: Option<SystemTime>,
}

impl Keys {
    /// Marks `key` until `until`, within [`HIT_FOR_MISS_KEYS`]: when full,
    /// expired marks go first, and a key that still finds no room is not
    /// marked (its requests keep coalescing, which is always safe).
    fn mark(&mut self, key: KeyHash, until: SystemTime, now: SystemTime) {
        if self.hit_for_miss.len() >= HIT_FOR_MISS_KEYS {
            self.sweep(now);
        }
        if self.hit_for_miss.len() < HIT_FOR_MISS_KEYS {
            self.hit_for_miss.insert(key, until);
        }
    }

    /// Drops expired marks, at most once per [`SWEEP_INTERVAL`] unless the
    /// map is full: marks go by time, not only by room.
    fn sweep_due(&mut self, now: SystemTime) {
        if self.next_sweep.is_none_or(|next| now >= next) {
            self.sweep(now);
        }
    }

    fn sweep(&mut self, now: SystemTime) {
        self.hit_for_miss.retain(|_, until| *until > now);
        self.next_sweep = Some(crate::clock::later(now, SWEEP_INTERVAL));
    }
}

/// One fetch in progress, as its waiters see it.
#[derive(Default)]
struct Flight {
    landing: Mutex<Option<Landing>>,
    landed: Event,
}

impl Flight {
    /// Wakes the waiters listening for the landing, once `landing` is set.
    /// Most fetches have none, and a notification would allocate the
    /// event's list only to find it empty. None is missed: a waiter
    /// listens before it reads `landing` again, and when that read (under
    /// `landing`'s lock) still found it unset, the lock orders its listener
    /// before this count.
    fn wake_listeners(&self) {
        if self.landed.total_listeners() > 0 {
            self.landed.notify(usize::MAX);
        }
    }
}

impl Coalescer {
    pub(crate) fn new(clock: SharedClock) -> Self {
        Self {
            keys: Mutex::default(),
            secret: crate::identity::random_secret("cachet coalescer fallback"),
            stored: AtomicU64::new(0),
            clock,
        }
    }

    fn hash(&self, key: &str) -> KeyHash {
        let hash = blake3::keyed_hash(&self.secret, key.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&hash.as_bytes()[..16]);
        u128::from_le_bytes(bytes)
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, Keys> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Joins the requests for `key`: the first one fetches, the others
    /// wait — unless the key is marked hit-for-miss, when each fetches on
    /// its own.
    pub(crate) fn join(self: &Arc<Self>, key: &str, hit_for_miss: Duration) -> Turn {
        let key = self.hash(key);
        let now = self.clock.now();
        let mut keys = self.keys();
        keys.sweep_due(now);
        if let Some(&until) = keys.hit_for_miss.get(&key) {
            if now < until {
                drop(keys);
                let mut fetch = self.alone_hashed(key, hit_for_miss);
                fetch.marked = true;
                return Turn::Fetch(fetch);
            }
            keys.hit_for_miss.remove(&key);
        }
        if let Some(flight) = keys.running.get(&key) {
            return Turn::Wait(Wait {
                flight: Arc::clone(flight),
            });
        }
        let flight = Arc::new(Flight::default());
        keys.running.insert(key, Arc::clone(&flight));
        Turn::Fetch(Fetch {
            coalescer: Arc::clone(self),
            key,
            flight: Some(flight),
            hit_for_miss,
            marked: false,
        })
    }

    /// The fetch of `key` for a background refresh: `None` when a fetch of
    /// it is already running, so a key is refreshed once at a time.
    pub(crate) fn try_fetch(self: &Arc<Self>, key: &str, hit_for_miss: Duration) -> Option<Fetch> {
        match self.join(key, hit_for_miss) {
            Turn::Fetch(fetch) => Some(fetch),
            Turn::Wait(_) => None,
        }
    }

    /// A fetch that no one waits for.
    pub(crate) fn alone(self: &Arc<Self>, key: &str, hit_for_miss: Duration) -> Fetch {
        self.alone_hashed(self.hash(key), hit_for_miss)
    }

    fn alone_hashed(self: &Arc<Self>, key: KeyHash, hit_for_miss: Duration) -> Fetch {
        Fetch {
            coalescer: Arc::clone(self),
            key,
            flight: None,
            hit_for_miss,
            marked: false,
        }
    }

    /// How many fetches are running now.
    pub(crate) fn running(&self) -> usize {
        self.keys().running.len()
    }

    /// The heap its maps hold: a slot per running fetch (and the fetch's
    /// shared state) and per hit-for-miss mark, at the maps' capacity.
    pub(crate) fn heap_bytes(&self) -> u64 {
        let keys = self.keys();
        let slot = |value: usize| (size_of::<KeyHash>() + value + 1) as u64;
        let running = keys.running.capacity() as u64 * slot(size_of::<Arc<Flight>>())
            + keys.running.len() as u64 * crate::weight::shared::<Flight>();
        let marks = keys.hit_for_miss.capacity() as u64 * slot(size_of::<SystemTime>());
        running + marks
    }
}

impl fmt::Debug for Coalescer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coalescer")
            .field("running", &self.running())
            .field("hit_for_miss", &self.keys().hit_for_miss.len())
            .finish()
    }
}

/// The right, and the duty, to fetch a key from the origin. Land it with
/// [`stored`](Self::stored) or [`not_stored`](Self::not_stored); dropping
/// it unlanded tells the waiters it was abandoned, so one of them takes
/// over. Never lost: a cancelled request drops it.
pub(crate) struct Fetch {
    coalescer: Arc<Coalescer>,
    key: KeyHash,
    flight: Option<Arc<Flight>>,
    hit_for_miss: Duration,
    /// The key is marked hit-for-miss: its response is not expected to be
    /// stored.
    marked: bool,
}

impl Fetch {
    /// Whether the key is marked hit-for-miss (its last response could not
    /// be stored), so this fetch is a pass to the origin.
    pub(crate) fn is_marked(&self) -> bool {
        self.marked
    }

    /// The response is in the store (or the key was found there): the
    /// waiters look it up, and the key is no longer hit-for-miss.
    pub(crate) fn stored(mut self) {
        self.land(Landing::Stored, false);
    }

    /// The response was not stored: the waiters go to the origin. With
    /// `hit_for_miss` (the response itself cannot be shared, as opposed to
    /// a failure), the key skips coalescing for the rule's window.
    pub(crate) fn not_stored(mut self, hit_for_miss: bool) {
        self.land(Landing::NotStored, hit_for_miss);
    }

    /// Whether other requests may be waiting for this fetch.
    pub(crate) fn is_shared(&self) -> bool {
        self.flight.is_some()
    }

    /// Lets the requests waiting for this fetch go to the origin on their
    /// own now, while this one goes on (its response streams to a client
    /// at that client's pace, and must not hold anyone else up). The key
    /// is not marked hit-for-miss; the fetch still lands when it ends.
    pub(crate) fn release_waiters(&mut self) {
        let Some(flight) = self.flight.take() else {
            return;
        };
        *flight
            .landing
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Landing::NotStored);
        {
            let mut keys = self.coalescer.keys();
            if keys
                .running
                .get(&self.key)
                .is_some_and(|current| Arc::ptr_eq(current, &flight))
            {
                keys.running.remove(&self.key);
            }
        }
        flight.wake_listeners();
    }

    fn land(&mut self, landing: Landing, hit_for_miss: bool) {
        let flight = self.flight.take();
        if flight.is_none() && landing == Landing::Abandoned {
            return; // landed already, or nobody waits and nothing to record
        }
        if let Some(flight) = &flight {
            *flight
                .landing
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(landing);
        }
        {
            let mut keys = self.coalescer.keys();
            match landing {
                Landing::Stored => {
                    // Counted before the flight leaves the map (under the
                    // same lock): whoever joins next sees the count moved.
                    self.coalescer.stored.fetch_add(1, Ordering::Relaxed);
                    keys.hit_for_miss.remove(&self.key);
                }
                Landing::NotStored if hit_for_miss && !self.hit_for_miss.is_zero() => {
                    let now = self.coalescer.clock.now();
                    let until = crate::clock::later(now, self.hit_for_miss);
                    keys.mark(self.key, until, now);
                }
                Landing::NotStored | Landing::Abandoned => {}
            }
            if let Some(flight) = &flight {
                if keys
                    .running
                    .get(&self.key)
                    .is_some_and(|current| Arc::ptr_eq(current, flight))
                {
                    keys.running.remove(&self.key);
                }
            }
        }
        if let Some(flight) = flight {
            flight.wake_listeners();
        }
    }
}

impl Drop for Fetch {
    fn drop(&mut self) {
        self.land(Landing::Abandoned, false);
    }
}

impl fmt::Debug for Fetch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetch")
            .field("key", &format_args!("{:032x}", self.key))
            .field("shared", &self.is_shared())
            .finish()
    }
}

/// A place in line behind another request's [`Fetch`].
pub(crate) struct Wait {
    flight: Arc<Flight>,
}

impl Wait {
    /// Waits until the fetch lands, and says how. Cancel-safe: dropping the
    /// future leaves the line.
    pub(crate) async fn landed(self) -> Landing {
        loop {
            if let Some(landing) = self.landing() {
                return landing;
            }
            let listener = self.flight.landed.listen();
            // Checked again after listening: a landing in between would
            // otherwise go unheard.
            if let Some(landing) = self.landing() {
                return landing;
            }
            listener.await;
        }
    }

    fn landing(&self) -> Option<Landing> {
        *self
            .flight
            .landing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("landing", &self.landing())
            .finish()
    }
}

impl Cache {
    /// Step 4, on a miss: this request's turn to fetch `plan`'s key from the
    /// origin, or to wait for the request already fetching it (then
    /// [`lookup_landed`](Self::lookup_landed) on [`Landing::Stored`] or
    /// [`Landing::Abandoned`], fetch alone on [`Landing::NotStored`], and
    /// fetch without storing past the rule's `lock_timeout`). Rules with
    /// `coalesce = false` always fetch.
    pub(crate) fn coalesce(&self, plan: &Plan) -> Turn {
        let rule = plan.rule();
        if !rule.coalesce() {
            return Turn::Fetch(self.fetch_alone(plan));
        }
        self.inner
            .coalescer
            .join(plan.key().as_str(), rule.hit_for_miss())
    }

    /// A [`Landmark`] to take before looking a request up.
    pub(crate) fn landmark(&self) -> Landmark {
        Landmark(self.inner.coalescer.stored.load(Ordering::Relaxed))
    }

    /// Whether a fetch has stored a response since `landmark`: a request
    /// that missed before it and now holds the [`Fetch`] should look again,
    /// since what it missed may have just been stored. Cheaper than looking
    /// again every time.
    pub(crate) fn landed_since(&self, landmark: Landmark) -> bool {
        self.landmark() != landmark
    }

    /// Step 3, after a hit that asks for it: the fetch for a background refresh of `plan`'s key, or
    /// `None` when one is already running (one refresh per key). Counted.
    pub(crate) fn refresh_fetch(&self, plan: &Plan) -> Option<Fetch> {
        let fetch = self
            .inner
            .coalescer
            .try_fetch(plan.key().as_str(), plan.rule().hit_for_miss())?;
        Counters::bump(&self.counters(plan).refreshes);
        Some(fetch)
    }

    /// Whether another instance sharing the store stored `plan`'s entry
    /// while this one waited for it (see [`Shared::before_fetch`](crate::store::Shared::before_fetch)).
    pub(crate) async fn other_instance_stored(&self, plan: &Plan) -> bool {
        let Some(shared) = self.inner.store.shared() else {
            return false;
        };
        let rule = plan.rule();
        shared
            .before_fetch(rule.cache(), plan.key(), rule.lock_timeout())
            .await
    }

    /// This instance's fetch for `plan` is over.
    pub(crate) async fn fetch_done(&self, plan: &Plan) {
        if let Some(shared) = self.inner.store.shared() {
            shared.fetch_done(plan.rule().cache(), plan.key()).await;
        }
    }

    /// A fetch of `plan`'s key that no other request waits for: after a
    /// waited-for fetch could not be stored.
    pub(crate) fn fetch_alone(&self, plan: &Plan) -> Fetch {
        self.inner
            .coalescer
            .alone(plan.key().as_str(), plan.rule().hit_for_miss())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::MockClock;

    fn coalescer() -> (Arc<Coalescer>, MockClock) {
        let clock = MockClock::new();
        (Arc::new(Coalescer::new(Arc::new(clock.clone()))), clock)
    }

    fn fetch(turn: Turn) -> Fetch {
        match turn {
            Turn::Fetch(fetch) => fetch,
            Turn::Wait(_) => panic!("expected to fetch"),
        }
    }

    fn wait(turn: Turn) -> Wait {
        match turn {
            Turn::Wait(wait) => wait,
            Turn::Fetch(_) => panic!("expected to wait"),
        }
    }

    const WINDOW: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn the_first_fetches_and_the_others_hear_how_it_landed() {
        let (coalescer, _) = coalescer();
        let leader = fetch(coalescer.join("k", WINDOW));
        let waiters: Vec<Wait> = (0..3).map(|_| wait(coalescer.join("k", WINDOW))).collect();
        let other = fetch(coalescer.join("other", WINDOW));
        let heard = tokio::spawn(async move {
            let mut landings = Vec::new();
            for waiter in waiters {
                landings.push(waiter.landed().await);
            }
            landings
        });
        leader.stored();
        assert_eq!(heard.await.unwrap(), [Landing::Stored; 3]);
        // Landed: the next request fetches anew.
        assert_eq!(coalescer.running(), 1);
        drop(other);
        assert_eq!(coalescer.running(), 0);
        assert!(fetch(coalescer.join("k", WINDOW)).is_shared());
    }

    #[test]
    fn a_listening_waiter_is_woken_and_a_later_one_reads_the_landing() {
        use std::future::Future;
        struct Wakes(AtomicU64);
        impl std::task::Wake for Wakes {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let (coalescer, _) = coalescer();
        let leader = fetch(coalescer.join("k", WINDOW));
        let listening = wait(coalescer.join("k", WINDOW));
        let late = wait(coalescer.join("k", WINDOW));
        let wakes = Arc::new(Wakes(AtomicU64::new(0)));
        let waker = std::task::Waker::from(Arc::clone(&wakes));
        let mut cx = std::task::Context::from_waker(&waker);
        let mut listening = std::pin::pin!(listening.landed());
        assert!(listening.as_mut().poll(&mut cx).is_pending());
        leader.stored();
        assert_eq!(wakes.0.load(Ordering::Relaxed), 1, "the listener is woken");
        let landed = listening.as_mut().poll(&mut cx);
        assert_eq!(landed, std::task::Poll::Ready(Landing::Stored));
        // Never listened before the landing: reads it at once.
        let mut late = std::pin::pin!(late.landed());
        let landed = late.as_mut().poll(&mut cx);
        assert_eq!(landed, std::task::Poll::Ready(Landing::Stored));
        assert_eq!(wakes.0.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_dropped_fetch_is_abandoned_and_one_waiter_takes_over() {
        let (coalescer, _) = coalescer();
        let leader = fetch(coalescer.join("k", WINDOW));
        let waiter = wait(coalescer.join("k", WINDOW));
        drop(leader);
        assert_eq!(waiter.landed().await, Landing::Abandoned);
        let next = fetch(coalescer.join("k", WINDOW));
        let _second = wait(coalescer.join("k", WINDOW));
        assert!(next.is_shared());
    }

    #[tokio::test]
    async fn an_unshareable_response_marks_the_key_hit_for_miss_for_a_while() {
        let (coalescer, clock) = coalescer();
        let leader = fetch(coalescer.join("k", WINDOW));
        let waiter = wait(coalescer.join("k", WINDOW));
        leader.not_stored(true);
        assert_eq!(waiter.landed().await, Landing::NotStored);
        // Marked: each request fetches alone, nobody queues.
        let first = fetch(coalescer.join("k", WINDOW));
        let second = fetch(coalescer.join("k", WINDOW));
        assert!(!first.is_shared() && !second.is_shared());
        // A stored response lifts the mark at once.
        first.stored();
        assert!(fetch(coalescer.join("k", WINDOW)).is_shared());
        // An error does not mark; the mark runs out with the clock.
        fetch(coalescer.join("e", WINDOW)).not_stored(false);
        assert!(fetch(coalescer.join("e", WINDOW)).is_shared());
        fetch(coalescer.join("t", WINDOW)).not_stored(true);
        clock.advance(WINDOW);
        assert!(fetch(coalescer.join("t", WINDOW)).is_shared());
        // A zero window never marks.
        fetch(coalescer.join("z", Duration::ZERO)).not_stored(true);
        assert!(fetch(coalescer.join("z", Duration::ZERO)).is_shared());
        drop(second);
    }

    #[test]
    fn hit_for_miss_marks_are_bounded() {
        let t0 = std::time::UNIX_EPOCH;
        let mut keys = Keys::default();
        for n in 0..HIT_FOR_MISS_KEYS {
            keys.mark(n as KeyHash, t0 + WINDOW, t0);
        }
        // Full of live marks: a new key finds no room and is not marked.
        let late = u128::MAX;
        keys.mark(late, t0 + WINDOW, t0);
        assert_eq!(keys.hit_for_miss.len(), HIT_FOR_MISS_KEYS);
        assert!(!keys.hit_for_miss.contains_key(&late));
        // Once they have run out, they make room.
        keys.mark(late - 1, t0 + 2 * WINDOW, t0 + WINDOW);
        assert_eq!(keys.hit_for_miss.len(), 1);
    }

    #[test]
    fn expired_marks_are_swept_by_time_not_only_for_room() {
        let t0 = std::time::UNIX_EPOCH;
        let mut keys = Keys::default();
        keys.sweep_due(t0);
        for n in 0..100 {
            keys.mark(n, t0 + WINDOW, t0);
        }
        keys.sweep_due(t0 + SWEEP_INTERVAL / 2);
        assert_eq!(keys.hit_for_miss.len(), 100, "not due yet");
        keys.sweep_due(t0 + WINDOW + SWEEP_INTERVAL);
        assert!(keys.hit_for_miss.is_empty());
    }

    #[test]
    fn its_heap_is_reported() {
        let (coalescer, _) = coalescer();
        let empty = coalescer.heap_bytes();
        for n in 0..100 {
            fetch(coalescer.join(&format!("k{n}"), WINDOW)).not_stored(true);
        }
        let marked = coalescer.heap_bytes();
        assert!(marked >= empty + 100 * 32, "{empty} -> {marked}");
        let running = fetch(coalescer.join("running", WINDOW));
        assert!(coalescer.heap_bytes() > marked);
        drop(running);
    }

    #[test]
    fn a_digest_is_hashed_by_its_low_half() {
        use std::hash::Hash;
        let mut hasher = DigestHasher::default();
        0x1234_5678_9abc_def0_0fed_cba9_8765_4321_u128.hash(&mut hasher);
        assert_eq!(hasher.finish(), 0x0fed_cba9_8765_4321);
        let (coalescer, _) = coalescer();
        let (a, b) = (coalescer.hash("/a GET"), coalescer.hash("/b GET"));
        let low = |digest: u128| {
            let mut hasher = DigestHasher::default();
            digest.hash(&mut hasher);
            hasher.finish()
        };
        assert_ne!(low(a), low(b));
    }

    #[test]
    fn keys_are_held_as_fixed_size_hashes() {
        let (coalescer, _) = coalescer();
        let long = "x".repeat(100_000);
        let fetch = fetch(coalescer.join(&long, WINDOW));
        assert_eq!(coalescer.running(), 1);
        assert!(matches!(coalescer.join(&long, WINDOW), Turn::Wait(_)));
        assert!(matches!(coalescer.join("y", WINDOW), Turn::Fetch(_)));
        drop(fetch);
        assert_eq!(std::mem::size_of::<KeyHash>(), 16);
    }

    #[tokio::test]
    async fn a_refresh_runs_once_per_key() {
        let (coalescer, _) = coalescer();
        let refresh = coalescer.try_fetch("k", WINDOW).expect("none running");
        assert!(coalescer.try_fetch("k", WINDOW).is_none());
        refresh.stored();
        assert!(coalescer.try_fetch("k", WINDOW).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_gives_up_leaves_no_trace() {
        let (coalescer, _) = coalescer();
        let leader = fetch(coalescer.join("k", WINDOW));
        let waiter = wait(coalescer.join("k", WINDOW));
        let gave_up = tokio::time::timeout(Duration::from_secs(5), waiter.landed()).await;
        assert!(gave_up.is_err());
        leader.stored();
        assert_eq!(coalescer.running(), 0);
    }
}
