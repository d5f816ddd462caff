#[cachet::cached(values = values, cache = "user")]
async fn both_sources(values: &cachet::values::ValueCache, id: u64) -> u64 {
    id
}

#[cachet::cached(key = "a:{id}", key_with = key_of)]
async fn both_keys(id: u64) -> u64 {
    id
}

#[cachet::cached(ttl = "5m", ttl = "1m")]
async fn twice(id: u64) -> u64 {
    id
}

fn main() {}
