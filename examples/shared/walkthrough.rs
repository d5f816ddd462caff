//! What the demos print: where to point curl, and what each call shows.

/// Prints the curl walk-through for a demo listening on `addr`.
pub(crate) fn print(framework: &str, addr: std::net::SocketAddr) {
    println!("cachet demo ({framework}) listening on http://{addr}\n");
    println!("A miss (50 ms at the origin), then a hit from memory:");
    println!("  curl -si http://{addr}/api/products | grep -iE 'cache-status|age|^\\['");
    println!("  curl -si http://{addr}/api/products | grep -iE 'cache-status|age|^\\['\n");
    println!("After 30 s the page is stale: served at once, refreshed in the background:");
    println!("  sleep 31; curl -si http://{addr}/api/products | grep -i cache-status\n");
    println!("A POST clears the entry; the next GET is a miss again:");
    println!("  curl -s -X POST http://{addr}/api/products");
    println!("  curl -si http://{addr}/api/products | grep -i cache-status\n");
    println!("Per-user entries: alice and bob never see each other's page:");
    println!("  curl -s -H 'Authorization: alice' http://{addr}/api/me");
    println!("  curl -s -H 'Authorization: bob' http://{addr}/api/me");
    println!(
        "  curl -sI -H 'Authorization: alice' http://{addr}/api/me   # HEAD from the GET entry\n"
    );
    println!("A function cached with #[cached]: the second call keeps computed_at_ms:");
    println!(
        "  curl -s http://{addr}/api/rates/eur; echo; curl -s http://{addr}/api/rates/eur; echo\n"
    );
    println!("One handler cached by a rule written in code, no TOML:");
    println!("  curl -si http://{addr}/api/news | grep -i cache-status");
    println!("  curl -si http://{addr}/api/news | grep -i cache-status\n");
    println!("A rate limiter on counters: the sixth request in 10 s is refused:");
    println!(
        "  for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{{http_code}} ' http://{addr}/api/limited; done; echo\n"
    );
    println!("Uncached, always fresh:");
    println!("  curl -si http://{addr}/api/time\n");
    println!("Hit/miss statistics:");
    println!("  curl -s http://{addr}/stats\n");
    println!("The management API and its live dashboard (no token: a local demo only):");
    println!("  open http://{addr}/_cachet/");
    println!("  curl -s http://{addr}/_cachet/metrics | grep cachet_requests\n");
}
