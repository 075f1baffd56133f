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
    /// Queues `batch` behind the batches submitted before it and returns
    /// at once; a refusal now (full, unreachable) is an `Err`.
    fn submit(&self, batch: &Sealed) -> Result<Durable, Error>;
}

impl Log for Wal {
    fn submit(&self, batch: &Sealed) -> Result<Durable, Error> {
        let durable = Wal::submit(self, batch.payload.clone())?;
        Ok(Box::pin(async move {
            durable.await.map(|_| ()).map_err(Error::from)
        }))
    }
}
