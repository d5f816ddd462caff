//! What to evict around an operation.

/// What to evict after (or before) an operation: keys, glob patterns
/// (`user:*`), tags — what a `cache_evict(pattern=..., before=...)` decorator does in a Django app.
///
/// ```
/// use cachet_core::Cache;
/// use cachet_core::values::Evict;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let values = Cache::builder().build()?.values();
/// let saved = values
///     .evict_after(&Evict::new().pattern("materials:*").tag("material:42"), async {
///         Ok::<_, std::io::Error>("saved")  // the database write
///     })
///     .await?;
/// assert_eq!(saved, "saved");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Evict {
    pub(super) keys: Vec<String>,
    pub(super) patterns: Vec<String>,
    pub(super) tags: Vec<String>,
}

impl Evict {
    /// Nothing yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// A key.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.keys.push(key.into());
        self
    }
    /// A glob pattern over keys: `*` any run of characters, `?` one.
    pub fn pattern(mut self, glob: impl Into<String>) -> Self {
        self.patterns.push(glob.into());
        self
    }
    /// A tag: every HTTP entry and value carrying it.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }
}
