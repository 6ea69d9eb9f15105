//! Rate limits for log lines that strangers can cause (a failed TLS
//! handshake, a refused request): at most `burst` lines per window, then
//! one line saying how many were suppressed. Without it, 2,745 INFO lines in
//! 30 s of failed handshakes drowned the log (issue 15).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One limiter per kind of line.
pub struct LogLimit {
    burst: u32,
    window: Duration,
    state: Mutex<State>,
}

struct State {
    start: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

/// What the caller should do with one line.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Log it; `suppressed` lines of this kind were dropped before it.
    Log {
        /// Lines dropped since the last one logged.
        suppressed: u64,
    },
    /// Drop it.
    Drop,
}

impl LogLimit {
    /// At most `burst` lines per `window`.
    pub const fn new(burst: u32, window: Duration) -> Self {
        LogLimit {
            burst,
            window,
            state: Mutex::new(State {
                start: None,
                logged: 0,
                suppressed: 0,
            }),
        }
    }

    /// Whether to log a line now.
    pub fn check(&self) -> Verdict {
        self.check_at(Instant::now())
    }

    fn check_at(&self, now: Instant) -> Verdict {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.start.is_none_or(|t| now.duration_since(t) >= self.window) {
            s.start = Some(now);
            s.logged = 0;
        }
        if s.logged < self.burst {
            s.logged += 1;
            Verdict::Log {
                suppressed: std::mem::take(&mut s.suppressed),
            }
        } else {
            s.suppressed += 1;
            Verdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_drops_then_reports_what_it_dropped() {
        let l = LogLimit::new(2, Duration::from_secs(10));
        let t = Instant::now();
        assert_eq!(l.check_at(t), Verdict::Log { suppressed: 0 });
        assert_eq!(l.check_at(t), Verdict::Log { suppressed: 0 });
        for _ in 0..5 {
            assert_eq!(l.check_at(t), Verdict::Drop);
        }
        let later = t + Duration::from_secs(11);
        assert_eq!(l.check_at(later), Verdict::Log { suppressed: 5 });
    }
}
