//! The engine's store, open now or being opened on a helper thread.
//!
//! A foreground `gcr run` opens the store (SQLite: connection, WAL index, schema) while it
//! prepares and starts the container from its image cache, so the two overlap; or not at
//! all, when the store's housekeeper does its store work (see [`crate::housekeeper`]). Any use of
//! the store waits for the open; [`StoreCell::wait`] gives the error, if any, to a caller
//! that can handle it: every use goes through [`StoreCell::wait`] (`Engine::store`), so a
//! failed open is an error of the command that needed the store.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;

use gcr_store::Store;

use crate::EngineError;

enum Pending {
    /// Not started: opened by the first use, or on a helper thread by [`StoreCell::begin`].
    Later(PathBuf),
    Opening(JoinHandle<Result<Store, gcr_store::StoreError>>),
}

pub struct StoreCell {
    store: OnceLock<Store>,
    pending: Mutex<Option<Pending>>,
}

impl StoreCell {
    /// An open store.
    pub fn ready(s: Store) -> StoreCell {
        StoreCell {
            store: OnceLock::from(s),
            pending: Mutex::new(None),
        }
    }

    /// The store at `root`, opened when first used or once [`StoreCell::begin`] is called.
    pub fn deferred(root: PathBuf) -> StoreCell {
        StoreCell {
            store: OnceLock::new(),
            pending: Mutex::new(Some(Pending::Later(root))),
        }
    }

    /// Starts opening the store on a helper thread (if it is not open or opening).
    pub fn begin(&self) {
        if let Ok(mut g) = self.pending.lock() {
            if let Some(Pending::Later(root)) = g.take() {
                *g = Some(Pending::Opening(std::thread::spawn(move || {
                    Store::open(&root)
                })));
            }
        }
    }

    /// True while the open has not been waited for.
    pub fn is_pending(&self) -> bool {
        self.store.get().is_none()
    }

    /// Waits for the open.
    pub fn wait(&self) -> Result<&Store, EngineError> {
        if let Some(s) = self.store.get() {
            return Ok(s);
        }
        let pending = self.pending.lock().ok().and_then(|mut g| g.take());
        let Some(p) = pending else {
            // A failed open was reported by an earlier wait; or another thread holds the
            // handle (the engine is used from one thread at a time).
            return self
                .store
                .get()
                .ok_or_else(|| EngineError::Internal("the store could not be opened".into()));
        };
        let opened = match p {
            Pending::Later(root) => Ok(Store::open(&root)),
            Pending::Opening(h) => h.join(),
        };
        match opened {
            Ok(Ok(s)) => Ok(self.store.get_or_init(|| s)),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(EngineError::Internal(
                "the thread opening the store panicked".into(),
            )),
        }
    }
}
