//! Repeated identical errors are logged once per window with a count, never once per attempt: a
//! failing disk retried at every election, or a peer hammering us with bad frames, must not flood
//! the log. On top of the window per key, one budget bounds the lines of all keys together: an
//! attacker cycling through thousands of source addresses (each a new key) gets at most
//! `MAX_LINES` lines a window, and the next line admitted says how many were held back.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long one key stays quiet after it was logged.
pub const LOG_WINDOW: Duration = Duration::from_secs(10);
/// Keys remembered at once; past this the oldest windows are forgotten (they would have expired).
const MAX_KEYS: usize = 1024;
/// Lines admitted per `LOG_WINDOW` over all keys together.
pub const MAX_LINES: u32 = 32;

#[derive(Debug, Default)]
pub struct LogLimiter {
    windows: HashMap<String, Window>,
    budget: Option<Budget>,
    /// Occurrences of any key held back by the budget and not yet reported on a line.
    over_budget: u64,
}

/// The lines admitted in the current budget window.
#[derive(Debug, Clone, Copy)]
struct Budget {
    opened: Instant,
    lines: u32,
}

/// What a line admitted by [`LogLimiter::admit`] should report it stood for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Admitted {
    /// Occurrences of the same key suppressed since its last line.
    pub like_this: u64,
    /// Occurrences of other keys held back by the budget since the last line reported them.
    pub others: u64,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    opened: Instant,
    suppressed: u64,
}

impl LogLimiter {
    /// Whether to log an occurrence of `key` at `now`: `Some(a)` means log it, with what was
    /// suppressed since (see [`Admitted`]); `None` means stay quiet (it is counted).
    pub fn admit(&mut self, key: &str, now: Instant) -> Option<Admitted> {
        let like_this = self.admit_key(key, now)?;
        if !self.spend_line(now) {
            // The key's window is open, so its own later occurrences stay quiet; this one is
            // counted here instead and reported by the next line the budget lets through.
            self.over_budget += 1;
            return None;
        }
        Some(Admitted { like_this, others: std::mem::take(&mut self.over_budget) })
    }

    /// Takes one line from the budget, opening a new window when the last has passed.
    fn spend_line(&mut self, now: Instant) -> bool {
        match &mut self.budget {
            Some(b) if now.saturating_duration_since(b.opened) < LOG_WINDOW => {
                if b.lines >= MAX_LINES {
                    return false;
                }
                b.lines += 1;
            }
            _ => self.budget = Some(Budget { opened: now, lines: 1 }),
        }
        true
    }

    /// The window per key: `Some(n)` opens a new window for `key` (`n` suppressed in the last).
    fn admit_key(&mut self, key: &str, now: Instant) -> Option<u64> {
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

/// " (N more like it in the last 10 s; M others held back)" for what was suppressed, else nothing.
pub fn suppressed_note(a: Admitted) -> String {
    let window = LOG_WINDOW.as_secs();
    match (a.like_this, a.others) {
        (0, 0) => String::new(),
        (n, 0) => format!(" ({n} more like it in the last {window} s)"),
        (0, m) => format!(" ({m} other lines held back by the log budget)"),
        (n, m) => format!(" ({n} more like it in the last {window} s; {m} other lines held back by the log budget)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_window_with_the_count_of_what_was_suppressed() {
        let mut l = LogLimiter::default();
        let t0 = Instant::now();
        let fresh = Some(Admitted::default());
        assert_eq!(l.admit("disk", t0), fresh);
        for i in 1..=19 {
            assert_eq!(l.admit("disk", t0 + Duration::from_millis(50 * i)), None);
        }
        assert_eq!(l.admit("other", t0), fresh, "keys are independent");
        assert_eq!(l.admit("disk", t0 + LOG_WINDOW), Some(Admitted { like_this: 19, others: 0 }));
        assert_eq!(l.admit("disk", t0 + LOG_WINDOW + Duration::from_millis(1)), None);
        l.clear("disk");
        assert_eq!(l.admit("disk", t0 + LOG_WINDOW + Duration::from_millis(2)), fresh);
    }

    #[test]
    fn the_number_of_keys_is_bounded() {
        let mut l = LogLimiter::default();
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS * 3) {
            l.admit(&format!("peer{i}"), t0 + Duration::from_millis(i as u64));
        }
        assert!(l.windows.len() <= MAX_KEYS);
    }

    #[test]
    fn thousands_of_keys_get_one_budget_of_lines_and_every_occurrence_is_counted() {
        let mut l = LogLimiter::default();
        let t0 = Instant::now();
        let (mut lines, mut reported) = (0u64, 0u64);
        // 2,000 source addresses cycled for 20 s, each refused every 10 ms in turn.
        let occurrences = 20_000u64;
        for i in 0..occurrences {
            let now = t0 + Duration::from_millis(i);
            if let Some(a) = l.admit(&format!("127.0.{}.{}", i % 2000 / 250, i % 250), now) {
                lines += 1;
                reported += 1 + a.like_this + a.others;
            }
        }
        assert!(lines <= 2 * u64::from(MAX_LINES) + 1, "{lines} lines for 20 s of refusals");
        let unreported = l.over_budget + l.windows.values().map(|w| w.suppressed).sum::<u64>();
        assert!(
            reported + unreported >= occurrences - 2 * MAX_KEYS as u64,
            "evicted windows lose only their own counts"
        );
        assert!(lines >= u64::from(MAX_LINES), "the budget still lets lines through");
    }

    #[test]
    fn the_first_line_after_a_full_budget_says_how_many_were_held_back() {
        let mut l = LogLimiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_LINES {
            assert!(l.admit(&format!("a{i}"), t0).is_some());
        }
        for i in 0..5 {
            assert_eq!(l.admit(&format!("b{i}"), t0), None, "over budget");
        }
        let next = l.admit("c", t0 + LOG_WINDOW).expect("a new window has budget");
        assert_eq!(next, Admitted { like_this: 0, others: 5 });
        assert_eq!(suppressed_note(next), " (5 other lines held back by the log budget)");
    }
}
