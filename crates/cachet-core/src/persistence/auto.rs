//! The auto-dump task: dumps the cache on an interval that can be started,
//! changed and stopped while it runs.

use super::{DumpError, DumpReport, Persistence, Shared};
use serde::Serialize;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// Whether the cache dumps itself on an interval, and how the last dump
/// went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AutoDumpStatus {
    /// Whether the task runs.
    pub running: bool,
    /// Its interval, in seconds.
    pub interval_secs: Option<u64>,
    /// The last dump it wrote.
    pub last: Option<DumpReport>,
    /// Why its last attempt failed, if it did.
    pub last_error: Option<String>,
}

/// The task, if running, and what it last did.
#[derive(Debug, Default)]
pub(crate) struct AutoDump {
    /// Held while a dump is written: dumps to one file never overlap (the
    /// auto-dump, `POST /dump` and the shutdown dump share `<file>.tmp`).
    pub(crate) writing: Mutex<()>,
    running: Mutex<Option<Running>>,
    outcome: Arc<Mutex<(Option<DumpReport>, Option<String>)>>,
}

#[derive(Debug)]
struct Running {
    interval: watch::Sender<Duration>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AutoDump {
    fn drop(&mut self) {
        if let Some(running) = self
            .running
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
        {
            running.task.abort();
        }
    }
}

impl Persistence {
    /// Dumps the cache to its dump file every `interval` from now on, on
    /// the current Tokio runtime; changes the interval of a running
    /// auto-dump; stops it for a zero interval.
    pub fn start_auto_dump(&self, interval: Duration) -> Result<(), DumpError> {
        if self.shared.config.file().is_none() {
            return Err(DumpError::NoDumpFile);
        }
        if interval.is_zero() {
            self.stop_auto_dump();
            return Ok(());
        }
        let auto = &self.shared.auto;
        let mut running = auto.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(current) = running
            .as_ref()
            .filter(|current| !current.task.is_finished())
        {
            current.interval.send_replace(interval);
            return Ok(());
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| DumpError::NoRuntime)?;
        let (sender, receiver) = watch::channel(interval);
        let task = runtime.spawn(run(
            Arc::downgrade(&self.shared),
            receiver,
            Arc::clone(&auto.outcome),
        ));
        *running = Some(Running {
            interval: sender,
            task,
        });
        tracing::info!(?interval, "auto-dump started");
        Ok(())
    }

    /// Stops the auto-dump; whether it was running.
    pub fn stop_auto_dump(&self) -> bool {
        let running = self
            .shared
            .auto
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match running {
            Some(running) => {
                running.task.abort();
                tracing::info!("auto-dump stopped");
                true
            }
            None => false,
        }
    }

    /// Whether the auto-dump runs, its interval, and its last outcome.
    pub fn auto_dump_status(&self) -> AutoDumpStatus {
        let auto = &self.shared.auto;
        let running = auto.running.lock().unwrap_or_else(PoisonError::into_inner);
        let live = running
            .as_ref()
            .filter(|current| !current.task.is_finished());
        let (last, last_error) = auto
            .outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        AutoDumpStatus {
            running: live.is_some(),
            interval_secs: live.map(|current| current.interval.borrow().as_secs()),
            last,
            last_error,
        }
    }
}

/// The task: sleeps, dumps (on the blocking pool), and starts over; an
/// interval change restarts the wait. It ends with the last handle.
async fn run(
    persistence: Weak<Shared>,
    mut interval: watch::Receiver<Duration>,
    outcome: Arc<Mutex<(Option<DumpReport>, Option<String>)>>,
) {
    loop {
        let wait = *interval.borrow_and_update();
        tokio::select! {
            () = tokio::time::sleep(wait) => {
                let Some(shared) = persistence.upgrade() else { return };
                let persistence = Persistence { shared };
                let dumped = tokio::task::spawn_blocking(move || persistence.dump_now()).await;
                let mut last = outcome.lock().unwrap_or_else(PoisonError::into_inner);
                match dumped {
                    Ok(Ok(report)) => *last = (Some(report), None),
                    Ok(Err(error)) => last.1 = Some(error.to_string()),
                    Err(error) => last.1 = Some(error.to_string()),
                }
            }
            changed = interval.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}
