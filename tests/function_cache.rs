//! `#[cached]` and `#[cache_evict]` at run time, with explicit handles
//! (the installed handle is process-wide: `tests/function_cache_installed.rs`
//! has it to itself).

use cachet::clock::MockClock;
use cachet::values::{Evict, ValueCache};
use cachet::{cache_evict, cached, Cache};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

#[derive(Debug, PartialEq)]
struct DbError;

/// A repository whose reads are counted: every body run is one `reads`.
#[derive(Clone)]
struct Repo {
    values: ValueCache,
    reads: Arc<AtomicUsize>,
    fail: bool,
}

impl Repo {
    fn new(values: ValueCache) -> Self {
        Self {
            values,
            reads: Arc::default(),
            fail: false,
        }
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    fn read(&self) {
        self.reads.fetch_add(1, Ordering::SeqCst);
    }

    #[cached(values = &self.values, ttl = "5m")]
    async fn user(&self, id: u64) -> Result<User, DbError> {
        self.read();
        tokio::task::yield_now().await;
        if self.fail {
            return Err(DbError);
        }
        Ok(User {
            id,
            name: format!("user {id}"),
        })
    }

    #[cached(values = &self.values, key = "user:{id}:{lang}", tags = ["user:{id}"])]
    async fn profile(&self, id: u64, lang: &str) -> Option<String> {
        self.read();
        (id != 0).then(|| format!("{id} in {lang}"))
    }

    #[cached(values = &self.values, key = "maybe:{id}", cache_none = true)]
    async fn maybe(&self, id: u64) -> Option<u64> {
        self.read();
        (id % 2 == 0).then_some(id)
    }

    #[cached(values = &self.values, key_with = Repo::search_key, unless = Vec::is_empty)]
    async fn search(&self, query: &str, page: u32) -> Vec<u64> {
        self.read();
        if query == "none" {
            Vec::new()
        } else {
            vec![u64::from(page)]
        }
    }

    fn search_key(&self, query: &&str, page: &u32) -> String {
        format!("search:{}:{page}", query.to_lowercase())
    }

    #[cache_evict(values = &self.values, key = "user:{id}:en", tags = ["user:{id}"])]
    async fn rename(&self, id: u64, fail: bool) -> Result<(), DbError> {
        if fail {
            Err(DbError)
        } else {
            Ok(())
        }
    }

    #[cache_evict(values = &self.values, pattern = "search:*", before = true)]
    async fn reindex(&self, fail: bool) -> Result<usize, DbError> {
        // Evicted before the body: what it reads is recomputed.
        let left = self.values.keys_like("search:*").await.unwrap().len();
        if fail {
            Err(DbError)
        } else {
            Ok(left)
        }
    }

    #[cache_evict(values = &self.values, keys = ["maybe:2", "maybe:3"])]
    async fn forget(&self) {}
}

fn repo() -> (Repo, MockClock) {
    let clock = MockClock::new();
    let cache = Cache::builder().clock(clock.clone()).build().unwrap();
    (Repo::new(cache.values()), clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_of_one_key_run_the_body_once() {
    let (repo, _clock) = repo();
    let calls: Vec<_> = (0..1000)
        .map(|_| {
            let repo = repo.clone();
            tokio::spawn(async move { repo.user(7).await })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().name, "user 7");
    }
    assert_eq!(repo.reads(), 1);
}

#[tokio::test]
async fn results_are_kept_for_the_ttl_then_computed_again() {
    let (repo, clock) = repo();
    repo.user(1).await.unwrap();
    repo.user(1).await.unwrap();
    assert_eq!(repo.reads(), 1);
    repo.user(2).await.unwrap();
    assert_eq!(repo.reads(), 2, "another argument, another key");
    clock.advance(Duration::from_secs(5 * 60 + 1));
    repo.user(1).await.unwrap();
    assert_eq!(repo.reads(), 3, "past the 5m ttl");
}

#[tokio::test]
async fn errors_none_and_unless_are_not_stored() {
    let (mut repo, _clock) = repo();
    repo.fail = true;
    assert_eq!(repo.user(1).await, Err(DbError));
    assert_eq!(repo.user(1).await, Err(DbError));
    assert_eq!(repo.reads(), 2, "an Err is never stored");

    assert_eq!(repo.profile(0, "en").await, None);
    assert_eq!(repo.profile(0, "en").await, None);
    assert_eq!(repo.reads(), 4, "a None is never stored");

    assert!(repo.search("none", 1).await.is_empty());
    assert!(repo.search("none", 1).await.is_empty());
    assert_eq!(repo.reads(), 6, "`unless` skipped storing the empty list");
    assert_eq!(repo.search("Tea", 1).await, [1]);
    assert_eq!(repo.search("tea", 1).await, [1]);
    assert_eq!(
        repo.reads(),
        7,
        "a stored result, under the key builder's key"
    );
}

#[tokio::test]
async fn cache_none_stores_the_whole_option() {
    let (repo, _clock) = repo();
    assert_eq!(repo.maybe(3).await, None);
    assert_eq!(repo.maybe(3).await, None);
    assert_eq!(repo.maybe(2).await, Some(2));
    assert_eq!(repo.maybe(2).await, Some(2));
    assert_eq!(repo.reads(), 2);
    repo.forget().await;
    assert_eq!(repo.maybe(3).await, None);
    assert_eq!(repo.reads(), 3, "`keys` evicted both after a plain return");
}

#[tokio::test]
async fn every_key_form_names_the_stored_value() {
    let (repo, _clock) = repo();
    repo.user(9).await.unwrap();
    repo.profile(9, "en").await;
    repo.search("Tea", 2).await;
    let keys = repo.values.keys_like("*").await.unwrap();
    // The default key: the method's path, then its arguments (self left out).
    let default = keys
        .iter()
        .find(|key| key.contains("Repo") && key.contains("::user:"))
        .unwrap_or_else(|| panic!("no default key among {keys:?}"));
    assert!(default.starts_with("function_cache::"), "{default}");
    let function = default.rsplit_once(':').unwrap().0;
    assert_eq!(
        *default,
        repo.values.function_key(function, &(9_u64,)).unwrap()
    );
    let stored: User = repo.values.get(default).await.unwrap().unwrap();
    assert_eq!(stored.id, 9);
    assert!(keys.contains(&"user:9:en".to_owned()), "{keys:?}");
    assert!(keys.contains(&"search:tea:2".to_owned()), "{keys:?}");
}

#[tokio::test]
async fn evictions_follow_success_only_and_reach_tags() {
    let (repo, _clock) = repo();
    repo.profile(5, "en").await;
    repo.profile(5, "fr").await;
    assert_eq!(repo.reads(), 2);
    assert_eq!(repo.rename(5, true).await, Err(DbError));
    repo.profile(5, "en").await;
    assert_eq!(repo.reads(), 2, "nothing evicted after an Err");
    repo.rename(5, false).await.unwrap();
    repo.profile(5, "en").await;
    repo.profile(5, "fr").await;
    assert_eq!(repo.reads(), 4, "the key and the tag `user:5` were evicted");
    // Tags reach values stored by #[cached] from the closure API too.
    repo.values
        .evict(&Evict::new().tag("user:5"))
        .await
        .unwrap();
    assert!(!repo.values.exists("user:5:fr").await.unwrap());
}

#[tokio::test]
async fn before_evicts_first_even_when_the_body_then_fails() {
    let (repo, _clock) = repo();
    repo.search("a", 1).await;
    repo.search("b", 1).await;
    assert_eq!(
        repo.reindex(false).await,
        Ok(0),
        "evicted before the body ran"
    );
    repo.search("a", 1).await;
    assert_eq!(repo.reindex(true).await, Err(DbError));
    assert!(repo.values.keys_like("search:*").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_value_that_no_longer_decodes_runs_the_body() {
    let (repo, _clock) = repo();
    // Bytes that are no `String` under the key (a deploy that changed
    // the type): a miss, computed and stored anew.
    let key = "user:3:en";
    repo.values
        .set(key, &vec![0xff_u8, 0xfe], Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(repo.profile(3, "en").await.unwrap(), "3 in en");
    assert_eq!(repo.reads(), 1);
    assert_eq!(repo.profile(3, "en").await.unwrap(), "3 in en");
    assert_eq!(repo.reads(), 1, "stored over what did not decode");
}

/// A handle passed as an argument: named by `values`, left out of the key.
#[cached(values = values)]
async fn double(values: &ValueCache, n: u64) -> u64 {
    n * 2
}

#[tokio::test]
async fn an_argument_named_by_values_is_the_handle_and_no_part_of_the_key() {
    let values = Cache::builder().build().unwrap().values();
    assert_eq!(double(&values, 21).await, 42);
    let keys = values.keys_like("*").await.unwrap();
    assert_eq!(
        keys,
        [values
            .function_key("function_cache::double", &(21_u64,))
            .unwrap()]
    );
}

#[tokio::test]
async fn a_named_value_cache_keeps_its_own_default_ttl() {
    let clock = MockClock::new();
    let cache = Cache::builder()
        .clock(clock.clone())
        .cache(
            "user",
            cachet::CacheSpec::new(1 << 20, Duration::from_secs(10)),
        )
        .build()
        .unwrap();
    let users = cache.values_in("user").unwrap();
    assert_eq!(double(&users, 1).await, 2);
    assert!(cache.values().keys_like("*").await.unwrap().is_empty());
    assert_eq!(users.keys_like("*").await.unwrap().len(), 1);
    clock.advance(Duration::from_secs(11));
    assert!(
        users.keys_like("*").await.unwrap().is_empty(),
        "the cache's 10 s ttl"
    );
}

#[cached(values = values)]
async fn pair(values: &ValueCache, a: u32, b: &str) -> String {
    format!("{a}{b}")
}

#[tokio::test]
async fn the_default_key_is_function_key_of_the_arguments_in_both_codecs() {
    for codec in [cachet::values::Codec::Binary, cachet::values::Codec::Json] {
        let values = Cache::builder()
            .value_codec(codec)
            .build()
            .unwrap()
            .values();
        pair(&values, 7, "x").await;
        let expected = values
            .function_key("function_cache::pair", &(7_u32, "x"))
            .unwrap();
        assert_eq!(values.keys_like("*").await.unwrap(), [expected]);
    }
}
