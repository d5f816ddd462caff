//! `GET /metrics`: Prometheus (OpenMetrics text) rendered at scrape time
//! from the cache's own counters, so a hit pays nothing for it and no
//! global recorder is involved.
//!
//! `prometheus-client` (the Prometheus project's own Rust client) writes
//! the exposition: its `Collector` encodes values handed to it at scrape
//! time, which is exactly this shape, where the `metrics` facade would add a
//! registry lookup or a handle per counter on the request path.

use cachet_core::Cache;

use cachet_core::stats::{CacheStats, OriginStats, StatsSnapshot};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt;

/// The content type of what [`render`] writes.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The exposition of every metric of `cache`, now.
pub(crate) fn render(cache: &Cache) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(CacheCollector {
        snapshot: cache.stats(),
    }));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .expect("writing to a String cannot fail");
    text
}

/// The figures of one scrape.
struct CacheCollector {
    snapshot: StatsSnapshot,
}

impl fmt::Debug for CacheCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheCollector").finish_non_exhaustive()
    }
}

/// One metric family: its descriptor, then a sample per label set.
fn family<'a, L>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric_type: MetricType,
    samples: impl IntoIterator<Item = (L, Sample)>,
) -> fmt::Result
where
    L: prometheus_client::encoding::EncodeLabelSet + 'a,
{
    let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, sample) in samples {
        let sample_encoder = metric.encode_family(&labels)?;
        match sample {
            Sample::Counter(value) => ConstCounter::new(value).encode(sample_encoder)?,
            Sample::Gauge(value) => {
                ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(sample_encoder)?
            }
        }
    }
    Ok(())
}

enum Sample {
    Counter(u64),
    Gauge(u64),
}

impl Collector for CacheCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let caches: Vec<(&str, &CacheStats)> = self
            .snapshot
            .caches
            .iter()
            .map(|(name, stats)| (name.as_str(), stats))
            .collect();

        let mut requests = Vec::new();
        for (name, stats) in &caches {
            for (status, value) in [
                ("hit", stats.hits),
                ("miss", stats.misses),
                ("stale", stats.stale),
                ("revalidated", stats.revalidated),
                ("bypass", stats.bypassed),
                ("coalesced", stats.coalesced),
            ] {
                requests.push((
                    [("cache", *name), ("status", status)],
                    Sample::Counter(value),
                ));
            }
        }
        family(
            &mut encoder,
            "cachet_requests",
            "Requests a rule matched, by what the cache did: hit, miss, coalesced and bypass partition them; stale (served stale) and revalidated (a stored entry updated by a 304) count some of them again.",
            MetricType::Counter,
            requests,
        )?;

        let mut origin = Vec::new();
        for (name, stats) in &caches {
            for (outcome, count) in &stats.origin.outcomes {
                origin.push((
                    [("cache", *name), ("outcome", *outcome)],
                    Sample::Counter(*count),
                ));
            }
        }
        family(
            &mut encoder,
            "cachet_origin_requests",
            "Requests sent to the origin, by the class of its status, or error when it sent none (a connection error or a timeout).",
            MetricType::Counter,
            origin,
        )?;

        {
            let mut metric = encoder.encode_descriptor(
                "cachet_origin_duration_seconds",
                "How long the origin took to send a response head.",
                None,
                MetricType::Histogram,
            )?;
            for (name, stats) in &caches {
                let counts = &stats.origin.duration_buckets;
                let sum = stats.origin.duration_sum_secs;
                let buckets: Vec<(f64, u64)> = OriginStats::DURATION_BOUNDS
                    .iter()
                    .copied()
                    .chain([f64::MAX])
                    .zip(counts.iter().copied())
                    .collect();
                let count = counts.iter().sum();
                let labels = [("cache", *name)];
                metric
                    .encode_family(&labels)?
                    .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
            }
        }

        for (metric, help, pick) in [
            (
                "cachet_entries",
                "Entries held.",
                (|stats: &CacheStats| stats.entries) as fn(&CacheStats) -> u64,
            ),
            (
                "cachet_bytes",
                "Bytes held, as weighed against max_bytes.",
                |stats| stats.bytes,
            ),
            (
                "cachet_max_bytes",
                "The named cache's budget in bytes.",
                |stats| stats.max_bytes,
            ),
        ] {
            let samples = caches
                .iter()
                .map(|(name, stats)| ([("cache", *name)], Sample::Gauge(pick(stats))));
            family(&mut encoder, metric, help, MetricType::Gauge, samples)?;
        }

        let mut evictions = Vec::new();
        for (name, stats) in &caches {
            for (reason, value) in [
                ("size", stats.evictions),
                ("expired", stats.expirations),
                ("removed", stats.removals),
                ("replaced", stats.replacements),
            ] {
                evictions.push((
                    [("cache", *name), ("reason", reason)],
                    Sample::Counter(value),
                ));
            }
        }
        family(
            &mut encoder,
            "cachet_evictions",
            "Entries dropped: size (to stay within max_bytes), expired, removed (purges, invalidations, deletes), replaced (by a newer response).",
            MetricType::Counter,
            evictions,
        )?;

        for (name, help, counts) in [
            (
                "cachet_purges",
                "Purge operations, by kind: tag, uri, pattern, key, clear, invalidation (after a mutation).",
                &self.snapshot.purges,
            ),
            (
                "cachet_soft_purges",
                "Soft purges (entries made stale to be revalidated, not removed) among cachet_purges, by kind.",
                &self.snapshot.soft_purges,
            ),
        ] {
            let samples = counts
                .iter()
                .map(|(kind, count)| ([("kind", *kind)], Sample::Counter(*count)));
            family(&mut encoder, name, help, MetricType::Counter, samples)?;
        }
        Ok(())
    }
}
