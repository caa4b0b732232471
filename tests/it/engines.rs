//! The conformance suite of `testkit::conformance` on every engine.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ozmint::engine::memory::MemoryEngine;
use ozmint::engine::sled::{SledEngine, SledOptions};
use ozmint::engine::{Engine, EngineError};
use testkit::conformance::Place;

/// A memory engine: one engine, "reopened" as itself.
struct Memory(Arc<MemoryEngine>);

#[async_trait]
impl Place for Memory {
    async fn open(&self) -> Arc<dyn Engine> {
        self.0.clone()
    }
    fn persistent(&self) -> bool {
        false
    }
}

fn memory() -> Option<Box<dyn Place>> {
    Some(Box::new(Memory(Arc::new(MemoryEngine::new()))))
}

/// A sled database in a temporary directory.
struct Sled(tempfile::TempDir);

#[async_trait]
impl Place for Sled {
    async fn open(&self) -> Arc<dyn Engine> {
        let dir = self.0.path().join("store");
        // The previous handle's last flush task may still hold the lock for a moment.
        for _ in 0..100 {
            match SledEngine::open(&dir, &SledOptions::default()) {
                Ok(e) => return Arc::new(e),
                Err(EngineError::Unavailable(_)) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => panic!("cannot open sled: {e}"),
            }
        }
        panic!("sled stayed locked");
    }
    fn persistent(&self) -> bool {
        true
    }
}

fn sled() -> Option<Box<dyn Place>> {
    Some(Box::new(Sled(tempfile::tempdir().expect("temp dir"))))
}

mod on_memory {
    use super::*;
    testkit::conformance_tests!(memory());
}

mod on_sled {
    use super::*;
    testkit::conformance_tests!(sled());
}
