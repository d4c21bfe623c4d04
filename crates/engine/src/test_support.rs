//! What the engines' unit tests (and the simulator's per-algorithm tests) share: milliseconds,
//! a booted engine of any algorithm, and the sends among a call's outputs.

use std::time::Duration;

use super::{Algorithm, Config, Engine, HardState, Message, Output, Timing};

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `id`'s configuration among `members`, default timing, seed 7.
pub fn config(algorithm: Algorithm, id: &str, members: &[&str]) -> Config {
    Config::new(id, members.iter().copied(), Timing::default(), 7).unwrap().with_algorithm(algorithm)
}

/// A fresh engine whose clock was started at 0 (booting does nothing else).
pub fn booted(algorithm: Algorithm, id: &str, members: &[&str]) -> Engine {
    let mut e = Engine::new(config(algorithm, id, members), HardState::default());
    assert!(e.tick(Duration::ZERO).is_empty(), "a fresh node does nothing at boot");
    e
}

pub fn sends(outputs: &[Output]) -> Vec<(String, Message)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send { to, message } => Some((to.clone(), message.clone())),
            _ => None,
        })
        .collect()
}
