struct Connection;

#[cachet::cached(ttl = "5m")]
async fn get(connection: &Connection, id: u64) -> u64 {
    let _ = connection;
    id
}

fn main() {}
