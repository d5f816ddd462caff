//! Step 8, record: the counters the steps bump, and the `Cache-Status` of a
//! response that went to the origin.

use super::admit::StoreOutcome;
use super::route::Plan;
use crate::cache::Cache;
use crate::protocol::cache_status::{ForwardReason, Outcome};
use crate::stats::Counters;
use crate::store::StoreError;
use http::header::HeaderMap;
use http::StatusCode;

impl Cache {
    /// The counters of the cache holding `plan`'s entry (by rule index: no
    /// string hashing on the request path).
    pub(crate) fn counters(&self, plan: &Plan) -> &Counters {
        &self.inner.rule_counters[plan.rule().index()]
    }

    /// Records what the origin answered for `plan` (`None`: no response, a
    /// connection error or a timeout) and how long its response head took.
    pub(crate) fn origin_answered(
        &self,
        plan: &Plan,
        status: Option<StatusCode>,
        took: std::time::Duration,
    ) {
        self.counters(plan).origin.record(status, took);
    }

    /// Records that a response for `plan` was not stored for a reason found
    /// after [`admit`](Self::admit) (its body was too large,
    /// it had trailers).
    pub(crate) fn not_stored(&self, plan: &Plan) {
        Counters::bump(&self.counters(plan).not_stored);
    }

    pub(super) fn record_insert(&self, plan: &Plan, result: Result<(), StoreError>) -> bool {
        let counters = self.counters(plan);
        match result {
            Ok(()) => {
                Counters::bump(&counters.inserts);
                true
            }
            Err(error) => {
                self.inner
                    .store_warnings
                    .warn(&format!("storing a response failed: {error}"));
                Counters::bump(&counters.store_errors);
                false
            }
        }
    }

    /// Labels a response that went to the origin for `reason`: its status,
    /// and whether it was stored, why not, or that it is being recorded.
    pub(crate) fn forwarded(
        &self,
        plan: &Plan,
        reason: ForwardReason,
        status: StatusCode,
        outcome: &StoreOutcome,
        headers: &mut HeaderMap,
    ) {
        let outcome = Outcome::Forward {
            reason,
            status: Some(status),
            stored: matches!(outcome, StoreOutcome::Stored),
            detail: match outcome {
                StoreOutcome::Stored => None,
                StoreOutcome::Recording => Some("recording".to_owned()),
                StoreOutcome::Refused(why) => Some(why.to_string()),
            },
        };
        self.inner
            .status_headers
            .write(&outcome, Some(plan.key.as_str()), headers);
    }

    /// Labels a response to a request the rule matched but the cache did not
    /// handle ([`Route::Bypass`](crate::adapter::Route::Bypass)).
    pub(crate) fn bypassed(&self, reason: ForwardReason, headers: &mut HeaderMap) {
        let outcome = Outcome::Forward {
            reason,
            status: None,
            stored: false,
            detail: None,
        };
        self.inner.status_headers.write(&outcome, None, headers);
    }
}
