#[cachet::cached(ttl = "five minutes")]
async fn unreadable_ttl(id: u64) -> u64 {
    id
}

#[cachet::cached(ttl = "0s")]
async fn zero_ttl(id: u64) -> u64 {
    id
}

#[cachet::cached(ttl = "5m")]
async fn destructured((a, b): (u64, u64)) -> u64 {
    a + b
}

#[cachet::cache_evict(before = true)]
async fn evicts_nothing(id: u64) {
    let _ = id;
}

fn main() {}
