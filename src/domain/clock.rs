//! The clock of everything that expires. Production reads the monotonic system clock;
//! tests use a manual clock they move forward by hand, so that expiry is tested without
//! waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A monotonic clock, cheap to clone; clones of a manual clock share its time.
#[derive(Debug, Clone)]
pub struct Clock(Source);

#[derive(Debug, Clone)]
enum Source {
    System(Instant),
    /// Microseconds since the clock was made.
    Manual(Arc<AtomicU64>),
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl Clock {
    /// The system's monotonic clock.
    pub fn system() -> Self {
        Clock(Source::System(Instant::now()))
    }

    /// A clock that stands still until [`Clock::advance`] moves it.
    pub fn manual() -> Self {
        Clock(Source::Manual(Arc::new(AtomicU64::new(0))))
    }

    /// Time since the clock was made.
    pub fn elapsed(&self) -> Duration {
        match &self.0 {
            Source::System(start) => start.elapsed(),
            Source::Manual(micros) => Duration::from_micros(micros.load(Ordering::SeqCst)),
        }
    }

    /// Moves a manual clock forward; the system clock cannot be moved and ignores it.
    pub fn advance(&self, by: Duration) {
        if let Source::Manual(micros) = &self.0 {
            let by = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
            micros.fetch_add(by, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_its_clones_follow() {
        let clock = Clock::manual();
        let clone = clock.clone();
        assert_eq!(clock.elapsed(), Duration::ZERO);
        clock.advance(Duration::from_secs(5));
        assert_eq!(clone.elapsed(), Duration::from_secs(5));
    }
}
