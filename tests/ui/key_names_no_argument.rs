#[cachet::cached(key = "user:{user_id}")]
async fn get(id: u64) -> u64 {
    id
}

#[cachet::cache_evict(tags = ["user:{}"])]
async fn evict(id: u64) {
    let _ = id;
}

fn main() {}
