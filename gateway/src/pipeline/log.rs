//! # The log: where a sealed batch becomes durable before its ack
//!
//! Two implementations: the local WAL (single node; durable = fsynced,
//! `crate::wal`) and a Kafka topic (cluster mode; durable = acknowledged
//! by every in-sync replica, `crate::cluster::producer`). The pipeline
//! answers a request only once its batch's future resolves `Ok`.

use std::future::Future;
use std::pin::Pin;

use super::{Error, Sealed};
use crate::wal::Wal;

/// Resolves once the batch is durable, or with why it is not.
pub type Durable = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'static>>;

pub trait Log: Send + Sync + 'static {
    /// Queues `batch`'s payloads behind the batches submitted before it
    /// and returns at once; a refusal now (full, unreachable) is an `Err`.
    /// The future resolves once every payload is durable.
    fn submit(&self, batch: &Sealed) -> Result<Durable, Error>;

    /// The largest payload it takes: the pipeline cuts a larger batch
    /// into parts.
    fn max_payload(&self) -> usize;
}

impl Log for Wal {
    fn submit(&self, batch: &Sealed) -> Result<Durable, Error> {
        // One payload unless a batch outgrows a WAL record, which a
        // request's body limit keeps from happening.
        let durable: Vec<_> = batch
            .payloads
            .iter()
            .map(|p| Wal::submit_class(self, p.clone(), batch.class))
            .collect::<Result<_, _>>()?;
        Ok(Box::pin(async move {
            for d in durable {
                d.await?;
            }
            Ok(())
        }))
    }

    fn max_payload(&self) -> usize {
        crate::wal::MAX_RECORD_BYTES as usize
    }
}
