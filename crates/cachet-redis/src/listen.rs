//! The invalidation channel: every instance subscribes, and drops from its
//! memory what another instance purged.

use crate::link::Link;
use cachet_core::store::tier::Purge;
use cachet_core::store::{MemoryStore, Store};
use futures_util::StreamExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// What the listener needs: the link, the memory tier, who we are.
#[derive(Debug, Clone)]
pub(crate) struct Listener {
    pub(crate) link: Arc<Link>,
    pub(crate) local: MemoryStore,
    pub(crate) caches: Arc<Vec<String>>,
    pub(crate) channel: String,
    pub(crate) instance: u64,
}

impl Listener {
    /// Subscribes and applies purges until the tier is dropped. Once the
    /// subscription was lost (or never made), the next one first empties
    /// memory: purges sent meanwhile never arrived.
    pub(crate) async fn run(self) {
        let mut missed = false;
        let mut delay = Duration::from_millis(50);
        for attempt in 0.. {
            // On a cluster, the next node when one fails.
            let clients = &self.link.channel_clients;
            let client = &clients[attempt % clients.len()];
            match self.subscribe(client).await {
                Ok(mut pubsub) => {
                    if missed {
                        self.flush().await;
                    }
                    self.link.listening.store(true, Ordering::Release);
                    delay = Duration::from_millis(50);
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        let Ok(text) = std::str::from_utf8(message.get_payload_bytes()) else {
                            continue;
                        };
                        if let Some((from, purge)) = Purge::decode(text) {
                            if from != self.instance {
                                purge.apply(&self.local).await;
                            }
                        }
                    }
                    // The commands' connection went to the same server:
                    // probe it before trusting it again.
                    let why = "the connection of the invalidation channel was lost";
                    self.link.channel_down(why);
                    self.link.down(why);
                }
                Err(error) => self.link.channel_down(&error),
            }
            missed = true;
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    }

    async fn subscribe(&self, client: &redis::Client) -> Result<redis::aio::PubSub, String> {
        let connecting = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&self.channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(self.link.connect_timeout, connecting).await {
            Ok(Ok(pubsub)) => Ok(pubsub),
            Ok(Err(error)) => Err(format!("subscribing to the invalidation channel: {error}")),
            Err(_) => Err("subscribing to the invalidation channel took too long".into()),
        }
    }

    async fn flush(&self) {
        for cache in self.caches.iter() {
            let _ = self.local.clear(cache).await;
        }
        tracing::info!(
            "reconnected to the invalidation channel; emptied memory, which may have missed purges"
        );
    }
}
