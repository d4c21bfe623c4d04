//! Repeated identical errors are logged once per window with a count, never once per attempt: a
//! failing disk retried at every election, or a peer hammering us with bad frames, must not flood
//! the log.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long one key stays quiet after it was logged.
pub const LOG_WINDOW: Duration = Duration::from_secs(10);
/// Keys remembered at once; past this the oldest windows are forgotten (they would have expired).
const MAX_KEYS: usize = 1024;

#[derive(Debug, Default)]
pub struct LogLimiter {
    windows: HashMap<String, Window>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    opened: Instant,
    suppressed: u64,
}

impl LogLimiter {
    /// Whether to log an occurrence of `key` at `now`: `Some(n)` means log it, `n` occurrences
    /// having been suppressed since the last line; `None` means stay quiet (it is counted).
    pub fn admit(&mut self, key: &str, now: Instant) -> Option<u64> {
        if let Some(w) = self.windows.get_mut(key) {
            if now.saturating_duration_since(w.opened) < LOG_WINDOW {
                w.suppressed += 1;
                return None;
            }
            let suppressed = w.suppressed;
            *w = Window { opened: now, suppressed: 0 };
            return Some(suppressed);
        }
        if self.windows.len() >= MAX_KEYS {
            self.windows.retain(|_, w| now.saturating_duration_since(w.opened) < LOG_WINDOW);
            if self.windows.len() >= MAX_KEYS {
                let oldest = self.windows.iter().min_by_key(|(_, w)| w.opened).map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    self.windows.remove(&k);
                }
            }
        }
        self.windows.insert(key.to_string(), Window { opened: now, suppressed: 0 });
        Some(0)
    }

    /// Forgets `key`, so its next occurrence is logged at once (the condition cleared).
    pub fn clear(&mut self, key: &str) {
        self.windows.remove(key);
    }
}

/// " (N more like it in the last 10 s)" when some were suppressed, else nothing.
pub fn suppressed_note(suppressed: u64) -> String {
    if suppressed == 0 {
        String::new()
    } else {
        format!(" ({suppressed} more like it in the last {} s)", LOG_WINDOW.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_window_with_the_count_of_what_was_suppressed() {
        let mut l = LogLimiter::default();
        let t0 = Instant::now();
        assert_eq!(l.admit("disk", t0), Some(0));
        for i in 1..=19 {
            assert_eq!(l.admit("disk", t0 + Duration::from_millis(50 * i)), None);
        }
        assert_eq!(l.admit("other", t0), Some(0), "keys are independent");
        assert_eq!(l.admit("disk", t0 + LOG_WINDOW), Some(19));
        assert_eq!(l.admit("disk", t0 + LOG_WINDOW + Duration::from_millis(1)), None);
        l.clear("disk");
        assert_eq!(l.admit("disk", t0 + LOG_WINDOW + Duration::from_millis(2)), Some(0));
    }

    #[test]
    fn the_number_of_keys_is_bounded() {
        let mut l = LogLimiter::default();
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS * 3) {
            assert_eq!(l.admit(&format!("peer{i}"), t0), Some(0));
        }
        assert!(l.windows.len() <= MAX_KEYS);
    }
}
