//! `GET /metrics`: Prometheus (OpenMetrics text) rendered at scrape time
//! from the cache's own counters, so a hit pays nothing for it and no
//! global recorder is involved.
//!
//! `prometheus-client` (the Prometheus project's own Rust client) writes
//! the exposition: its `Collector` encodes values handed to it at scrape
//! time, which is exactly this shape, where the `metrics` facade would add a
//! registry lookup or a handle per counter on the request path.

use crate::cache::Cache;
use crate::stats::{Counters, DURATION_BOUNDS, ORIGIN_OUTCOMES, PURGE_KINDS};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// The content type of what [`render`] writes.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The exposition of every metric of `cache`, now.
pub(crate) fn render(cache: &Cache) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(CacheCollector {
        cache: cache.clone(),
    }));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .expect("writing to a String cannot fail");
    text
}

struct CacheCollector {
    cache: Cache,
}

impl fmt::Debug for CacheCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheCollector").finish_non_exhaustive()
    }
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
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
        let inner = &self.cache.inner;
        let caches: Vec<(&str, &Counters, crate::store::StoreUsage, u64)> = inner
            .caches
            .iter()
            .map(|(name, spec)| {
                let usage = inner.store.usage(name).unwrap_or_default();
                (name.as_str(), &*inner.counters[name], usage, spec.max_bytes)
            })
            .collect();

        let mut requests = Vec::new();
        for (name, counters, _, _) in &caches {
            for (status, value) in [
                ("hit", load(&counters.hits)),
                ("miss", load(&counters.misses)),
                ("stale", load(&counters.stale)),
                ("revalidated", load(&counters.revalidated)),
                ("bypass", load(&counters.bypassed)),
                ("coalesced", load(&counters.coalesced)),
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
        for (name, counters, _, _) in &caches {
            for (outcome, counter) in ORIGIN_OUTCOMES.iter().zip(&counters.origin.outcomes) {
                origin.push((
                    [("cache", *name), ("outcome", *outcome)],
                    Sample::Counter(load(counter)),
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
            for (name, counters, _, _) in &caches {
                let (counts, sum) = counters.origin.duration.snapshot();
                let buckets: Vec<(f64, u64)> = DURATION_BOUNDS
                    .iter()
                    .copied()
                    .chain([f64::MAX])
                    .zip(counts)
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
                (|usage: &crate::store::StoreUsage, _| usage.entries)
                    as fn(&crate::store::StoreUsage, u64) -> u64,
            ),
            (
                "cachet_bytes",
                "Bytes held, as weighed against max_bytes.",
                |usage, _| usage.bytes,
            ),
            (
                "cachet_max_bytes",
                "The named cache's budget in bytes.",
                |_, max| max,
            ),
        ] {
            let samples = caches.iter().map(|(name, _, usage, max)| {
                ([("cache", *name)], Sample::Gauge(pick(usage, *max)))
            });
            family(&mut encoder, metric, help, MetricType::Gauge, samples)?;
        }

        let mut evictions = Vec::new();
        for (name, _, usage, _) in &caches {
            for (reason, value) in [
                ("size", usage.evictions),
                ("expired", usage.expirations),
                ("removed", usage.removals),
                ("replaced", usage.replacements),
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

        let purges = PURGE_KINDS
            .iter()
            .zip(&inner.purges.kinds)
            .map(|(kind, counter)| ([("kind", *kind)], Sample::Counter(load(counter))));
        family(
            &mut encoder,
            "cachet_purges",
            "Purge operations, by kind: tag, uri, pattern, key, clear, invalidation (after a mutation).",
            MetricType::Counter,
            purges,
        )
    }
}
