//! The rule set a running server uses, swapped whole by a reload.
//!
//! Readers take the current [`Detector`] once per unit of work (a request's chunk, a syslog
//! batch) and keep it to the end of that unit, so a reload never changes the rules half-way
//! through a record: each record is detected by exactly one rule set, old or new.

use std::sync::{Arc, RwLock};

use crate::Detector;

/// A replaceable `Option<Arc<Detector>>` (`None`: no Sigma rules configured).
#[derive(Default)]
pub struct SharedDetector {
    current: RwLock<Option<Arc<Detector>>>,
}

impl SharedDetector {
    pub fn new(detector: Option<Arc<Detector>>) -> SharedDetector {
        SharedDetector {
            current: RwLock::new(detector),
        }
    }

    /// The rule set in use now.
    pub fn current(&self) -> Option<Arc<Detector>> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Makes `detector` the rule set in use (`None`: detection off).
    pub fn replace(&self, detector: Option<Arc<Detector>>) {
        let mut g = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *g = detector;
    }
}

impl std::fmt::Debug for SharedDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedDetector")
            .field("current", &self.current())
            .finish()
    }
}
