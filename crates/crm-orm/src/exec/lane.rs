//! The read lane: PostgreSQL connections for one-statement reads, taken back without a round
//! trip.
//!
//! sqlx's pool tests every connection it takes back with a round trip (a `Sync` and its
//! `ReadyForQuery`, in a task of its own), in case the work on it stopped midway. For a read of
//! one statement that is a second round trip per request: under the load benchmark it was
//! about a tenth of the server's CPU, and woke the database once more per request. The lane
//! knows when a read ran to the end (the protocol is then waiting for the next query, and the
//! statement's tenant settings ended with its implicit transaction): only then is its
//! connection kept; a read that failed or was dropped midway closes its connection. The lane
//! holds at most `size` connections, opened when first needed.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::pool::{Executor, ExecutorSource};
use crate::error::{OrmError, Result};

pub(crate) struct ReadLane {
    idle: Mutex<Vec<PgConnection>>,
    permits: Arc<Semaphore>,
    options: PgConnectOptions,
    acquire_timeout: Duration,
    open: AtomicU32,
}

impl std::fmt::Debug for ReadLane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadLane").field("open", &self.open.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

/// A connection of the lane, checked out. [`LaneConn::keep`] gives it back; dropped otherwise
/// (a read that failed or was dropped midway), it closes.
pub(crate) struct LaneConn {
    conn: PgConnection,
    slot: Slot,
}

/// A checked-out connection's place in the lane: its permit, and the count of open
/// connections, decremented when the connection closes.
struct Slot {
    lane: Arc<ReadLane>,
    kept: bool,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.kept {
            self.lane.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl ReadLane {
    pub(crate) fn new(options: PgConnectOptions, size: usize, acquire_timeout: Duration) -> Arc<ReadLane> {
        Arc::new(ReadLane {
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Arc::new(Semaphore::new(size)),
            options,
            acquire_timeout,
            open: AtomicU32::new(0),
        })
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<PgConnection>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection: an idle one, or a new one while fewer than `size` are checked out. Waits
    /// at most the acquire timeout, as the pool does (`PoolTimedOut`).
    pub(crate) async fn acquire(self: &Arc<Self>) -> Result<LaneConn> {
        let deadline = tokio::time::Instant::now() + self.acquire_timeout;
        let permit = tokio::time::timeout_at(deadline, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| OrmError::Database(sqlx::Error::PoolTimedOut))?
            .map_err(|_| OrmError::Database(sqlx::Error::PoolClosed))?;
        let idle = self.idle().pop();
        let conn = if let Some(c) = idle {
            c
        } else {
            let c = tokio::time::timeout_at(deadline, self.options.connect())
                .await
                .map_err(|_| OrmError::Database(sqlx::Error::PoolTimedOut))??;
            self.open.fetch_add(1, Ordering::Relaxed);
            c
        };
        Ok(LaneConn { conn, slot: Slot { lane: Arc::clone(self), kept: false, _permit: permit } })
    }

    /// Connections open and, of those, idle.
    pub(crate) fn stats(&self) -> (u32, usize) {
        (self.open.load(Ordering::Relaxed), self.idle().len())
    }
}

impl LaneConn {
    /// The read ran to the end: the connection goes back to the lane for the next one.
    pub(crate) fn keep(self) {
        let LaneConn { conn, mut slot } = self;
        slot.lane.idle().push(conn);
        slot.kept = true;
    }
}

impl ExecutorSource for LaneConn {
    fn ex(&mut self) -> Executor<'_> {
        Executor::Pg(&mut self.conn)
    }
}
