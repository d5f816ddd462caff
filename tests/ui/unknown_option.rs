#[cachet::cached(ttl = "5m", colour = "red")]
async fn get(id: u64) -> u64 {
    id
}

fn main() {}
