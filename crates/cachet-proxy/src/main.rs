//! `cachet-proxy`: the command line.

use cachet_proxy::{serve_admin, Overrides, Proxy, ProxyConfig};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// jemalloc rather than the system allocator (feature `jemalloc`, on by
/// default): filled with a million 11-byte responses under a 64 MiB
/// budget, glibc's malloc held about 0.15 × the budget more (the holes
/// evictions leave), see docs/benchmarks.md.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A caching reverse proxy configured by cachet's TOML rules.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The configuration file: `[proxy]`, `[caches.*]`, `[[rules]]`, …
    /// (default: the `CACHET_CONFIG` environment variable, if set).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The address to listen on (default 127.0.0.1:8080), over the file's.
    #[arg(long)]
    listen: Option<String>,
    /// The upstream, e.g. http://127.0.0.1:8000, over the file's.
    #[arg(long)]
    upstream: Option<String>,
    /// Validate the configuration and exit.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let overrides = Overrides {
        listen: cli.listen,
        upstream: cli.upstream,
        clock: None,
    };
    // Logging first: what loading and restoring find is logged.
    if !cli.check {
        start_logging();
    }
    let path = cli
        .config
        .or_else(|| std::env::var_os("CACHET_CONFIG").map(PathBuf::from));
    let config = match ProxyConfig::load(path.as_deref(), &overrides) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("cachet-proxy: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    if cli.check {
        println!(
            "cachet-proxy: configuration ok: {} rule(s), {} cache(s), upstream {}, listen {}",
            config.cache.rules().len(),
            config.cache.caches().len(),
            config.upstream,
            config.listen
        );
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cachet-proxy: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Before serving: the dump the last run left (blocking file I/O).
    if config.persistence.config().file().is_some() {
        let report = config.persistence.restore();
        match &report.file {
            Some(file) => println!(
                "cachet-proxy: restored {} entries from {} ({} expired, {} skipped)",
                report.restored,
                file.display(),
                report.expired,
                report.skipped
            ),
            None if report.failures.is_empty() => {
                println!("cachet-proxy: no dump to restore; starting empty");
            }
            None => eprintln!(
                "cachet-proxy: no dump could be restored, starting empty: {}",
                report.failures.join("; ")
            ),
        }
    }
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(config.listen).await {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("cachet-proxy: cannot listen on {}: {error}", config.listen);
                return ExitCode::FAILURE;
            }
        };
        let bound = listener.local_addr().unwrap_or(config.listen);
        println!(
            "cachet-proxy listening on http://{bound}, forwarding to {}",
            config.upstream
        );
        let (stop, stopped) = tokio::sync::watch::channel(());
        let on_stop = |mut stopped: tokio::sync::watch::Receiver<()>| async move {
            let _ = stopped.changed().await;
        };
        if let Some(address) = config.admin_listen {
            let admin = match tokio::net::TcpListener::bind(address).await {
                Ok(admin) => admin,
                Err(error) => {
                    eprintln!("cachet-proxy: cannot listen on {address} for the admin API: {error}");
                    return ExitCode::FAILURE;
                }
            };
            let bound = admin.local_addr().unwrap_or(address);
            println!("cachet-proxy admin API on http://{bound}/");
            let serving = serve_admin(&config, admin, on_stop(stopped.clone()));
            tokio::spawn(serving);
        }
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop.send(());
        });
        let cache = config.cache.clone();
        let persistence = config.persistence.clone();
        if let Some(interval) = persistence.config().interval() {
            if let Err(error) = persistence.start_auto_dump(interval) {
                eprintln!("cachet-proxy: cannot start the auto-dump: {error}");
            }
        }
        let proxy = Proxy::new(&config);
        proxy.serve(listener, on_stop(stopped)).await;
        // Once the last request is done: the dump the next start restores.
        if persistence.config().file().is_some() {
            persistence.stop_auto_dump();
            let dumping = persistence.clone();
            match tokio::task::spawn_blocking(move || dumping.dump_now()).await {
                Ok(Ok(report)) => println!(
                    "cachet-proxy: dumped {} entries to {}",
                    report.entries,
                    report.file.display()
                ),
                Ok(Err(error)) => eprintln!("cachet-proxy: the shutdown dump failed: {error}"),
                Err(error) => eprintln!("cachet-proxy: the shutdown dump failed: {error}"),
            }
        }
        for (name, stats) in cache.stats().caches {
            println!(
                "cachet-proxy stopped: cache `{name}`: {} entries, {} bytes counted of {}, {} evictions",
                stats.entries, stats.bytes, stats.max_bytes, stats.evictions
            );
        }
        ExitCode::SUCCESS
    })
}

/// Logs to stdout (the access log has a writer of its own, see
/// `access_log.rs`). Colours only on a terminal: escape codes cost
/// formatting time and clutter a log file.
fn start_logging() {
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_ansi(std::io::stdout().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
