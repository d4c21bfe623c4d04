//! Unit tests of config.rs, each named after the rule it holds.

use super::*;

fn timing(min_ms: u64, max_ms: u64, hb_ms: u64) -> Timing {
    Timing {
        election_timeout: (Duration::from_millis(min_ms), Duration::from_millis(max_ms)),
        heartbeat_interval: Duration::from_millis(hb_ms),
        ..Timing::default()
    }
}

/// `Timing::new` with the defaults but for the election timeout and heartbeat interval.
fn new_timing(election_timeout: (f64, f64), heartbeat_interval: f64) -> Result<Timing, ConfigError> {
    Timing::new(election_timeout, heartbeat_interval, true, true, 0.05)
}

fn message<T: std::fmt::Debug>(r: Result<T, ConfigError>) -> String {
    r.unwrap_err().0
}

#[test]
fn config_errors_name_the_argument() {
    let err = |r: Result<Config, ConfigError>| r.unwrap_err().0;
    assert!(err(Config::new("x", ["a", "b"], Timing::default(), 0)).starts_with("node_id:"));
    assert!(err(Config::new("a", Vec::<String>::new(), Timing::default(), 0)).starts_with("members:"));
    assert!(err(Config::new("a", ["a", "a"], Timing::default(), 0)).contains("listed twice"));
    assert!(err(Config::new("", [""], Timing::default(), 0)).contains("non-empty"));
    assert!(err(Config::new("a", ["a"], timing(300, 150, 50), 0)).starts_with("election_timeout:"));
    assert!(err(Config::new("a", ["a"], timing(0, 150, 50), 0)).starts_with("election_timeout:"));
    assert!(err(Config::new("a", ["a"], timing(150, 300, 150), 0)).starts_with("heartbeat_interval:"));
    let drift = Timing { max_clock_drift: 0.5, ..Timing::default() };
    assert!(err(Config::new("a", ["a"], drift, 0)).starts_with("max_clock_drift:"));
    assert!(Algorithm::parse("paxos").unwrap_err().0.starts_with("algorithm:"));
    assert!(seconds("now", f64::NAN).is_err() && seconds("now", -1.0).is_err());
}

#[test]
fn equal_timeout_bounds_are_allowed() {
    // Figure 16 of the Raft paper has a 150-150 ms row.
    assert!(Config::new("a", ["a"], timing(150, 150, 75), 0).is_ok());
    assert!(new_timing((0.15, 0.15), 0.075).is_ok());
}

#[test]
fn long_node_ids_are_refused() {
    let long = "n".repeat(MAX_NODE_ID_BYTES + 1);
    assert!(Config::new(long.clone(), [long], Timing::default(), 0).is_err());
}

// ----- Timing::new: the one check of timing values --------------------------------------

#[test]
fn timing_defaults_pass_their_own_rules() {
    let d = Timing::default();
    let (lo, hi) = d.election_timeout_seconds();
    let built =
        Timing::new((lo, hi), d.heartbeat_interval.as_secs_f64(), d.pre_vote, d.check_quorum, d.max_clock_drift);
    assert_eq!(built, Ok(d.clone()));
    assert_eq!(d.validate(), Ok(()));
}

#[test]
fn election_timeout_bounds_must_be_finite() {
    assert_eq!(
        message(new_timing((f64::NAN, 0.3), 0.05)),
        "election_timeout: both bounds must be finite numbers of seconds, got (nan, 0.3)"
    );
    assert!(message(new_timing((0.15, f64::INFINITY), 0.05)).contains("(0.15, inf)"));
}

#[test]
fn election_timeout_bounds_must_be_positive() {
    assert_eq!(
        message(new_timing((0.0, 0.15), 0.05)),
        "election_timeout: both bounds must be positive, got (0.0, 0.15)"
    );
    assert!(message(new_timing((0.15, -0.3), 0.05)).contains("(0.15, -0.3)"));
}

#[test]
fn election_timeout_bounds_are_at_most_max_seconds() {
    assert_eq!(
        message(new_timing((1e300, 2e300), 0.05)),
        "election_timeout: each bound must be at most 1e9 seconds (about 31 years), got (1e+300, 2e+300)"
    );
    assert!(new_timing((MAX_SECONDS, MAX_SECONDS), 0.05).is_ok());
}

#[test]
fn election_timeout_min_must_not_exceed_max() {
    assert_eq!(message(new_timing((0.3, 0.15), 0.05)), "election_timeout: min (0.3) must not exceed max (0.15)");
}

#[test]
fn heartbeat_interval_must_be_finite_and_positive() {
    assert_eq!(
        message(new_timing((0.15, 0.3), f64::NAN)),
        "heartbeat_interval: must be a finite number of seconds, got nan"
    );
    assert_eq!(message(new_timing((0.15, 0.3), 0.0)), "heartbeat_interval: must be positive, got 0.0");
    assert_eq!(message(new_timing((0.15, 0.3), -0.05)), "heartbeat_interval: must be positive, got -0.05");
}

#[test]
fn heartbeat_interval_must_be_below_the_minimum_election_timeout() {
    assert_eq!(
        message(new_timing((0.15, 0.3), 0.15)),
        "heartbeat_interval: must be below election_timeout[0] (0.15 >= 0.15)"
    );
    assert!(new_timing((0.15, 0.3), 0.149).is_ok());
}

#[test]
fn max_clock_drift_must_be_in_zero_to_one_half() {
    for bad in [0.5, -0.01, f64::NAN] {
        let m = message(Timing::new((0.15, 0.3), 0.05, true, true, bad));
        assert!(m.starts_with("max_clock_drift: must be in [0, 0.5), got "), "{m}");
    }
    assert!(Timing::new((0.15, 0.3), 0.05, true, true, 0.0).is_ok());
}

#[test]
fn validate_applies_the_rules_of_new() {
    assert_eq!(message(timing(300, 150, 50).validate()), message(new_timing((0.3, 0.15), 0.05)));
    assert_eq!(message(timing(150, 300, 150).validate()), message(new_timing((0.15, 0.3), 0.15)));
}

// ----- seconds, members, priorities, transfer targets -------------------------------------

#[test]
fn seconds_are_finite_not_negative_and_at_most_max_seconds() {
    assert_eq!(message(seconds("timeout", f64::NAN)), "timeout: must be a finite number of seconds, got nan");
    assert_eq!(message(seconds("timeout", -1.0)), "timeout: must not be negative, got -1.0");
    assert_eq!(
        message(seconds("timeout", 1e12)),
        "timeout: must be at most 1e9 seconds (about 31 years), got 1000000000000.0"
    );
    assert_eq!(seconds("timeout", 0.0), Ok(Duration::ZERO));
    assert_eq!(seconds("timeout", 1.5), Ok(Duration::from_millis(1500)));
}

#[test]
fn members_rule_a_group_has_one_to_max_members() {
    assert_eq!(message(numbered_members(0)), "members: a group needs at least one member, got 0");
    assert_eq!(message(numbered_members(-3)), "members: a group needs at least one member, got -3");
    assert_eq!(message(numbered_members(1025)), "members: a group has at most 1024 members, got 1025");
    assert_eq!(numbered_members(3), Ok(vec!["n1".to_string(), "n2".to_string(), "n3".to_string()]));
    assert_eq!(numbered_members(MAX_MEMBERS as i64).map(|m| m.len()), Ok(MAX_MEMBERS));
    assert_eq!(message(validate_members(Vec::new())), "members: a group needs at least one member");
    let many: Vec<NodeId> = (0..=MAX_MEMBERS).map(|i| format!("m{i}")).collect();
    assert_eq!(message(validate_members(many)), "members: a group has at most 1024 members, got 1025");
}

#[test]
fn priority_rule_own_entry_must_equal_priority() {
    let cfg = || Config::new("a", ["a", "b"], Timing::default(), 0).unwrap();
    let prios = |a: i64| BTreeMap::from([("a".to_string(), a), ("b".to_string(), 5)]);
    assert_eq!(
        message(cfg().with_ranks(Some(1), prios(2))),
        "priorities: this node's entry (2) differs from priority (1); give one, or make them equal"
    );
    assert_eq!(cfg().with_ranks(Some(2), prios(2)).unwrap().priority, 2);
    assert_eq!(cfg().with_ranks(None, prios(3)).unwrap().priority, 3, "the own entry when priority is None");
    assert_eq!(cfg().with_ranks(Some(4), BTreeMap::new()).unwrap().priority, 4);
    let none = cfg().with_ranks(None, BTreeMap::new()).unwrap();
    assert_eq!((none.priority, none.rank("b")), (0, (0, "b")), "neither given: 0");
    let stranger = BTreeMap::from([("z".to_string(), 1)]);
    assert!(message(cfg().with_ranks(None, stranger)).starts_with("priorities: \"z\" is not one of the members"));
}

#[test]
fn transfer_target_rule_names_another_member() {
    let cfg = Config::new("a", ["a", "b", "c"], Timing::default(), 0).unwrap();
    assert_eq!(message(cfg.transfer_target("a")), "to: 'a' is this node itself; name a peer");
    assert_eq!(message(cfg.transfer_target("nobody")), "to: 'nobody' is not a member (members: ['a', 'b', 'c'])");
    assert_eq!(cfg.transfer_target("b"), Ok(()));
}

#[test]
fn messages_show_floats_and_strs_as_python_does() {
    let cases = [
        (0.15, "0.15"),
        (0.3, "0.3"),
        (1.0, "1.0"),
        (0.0, "0.0"),
        (-0.05, "-0.05"),
        (1e300, "1e+300"),
        (1e16, "1e+16"),
        (1e15, "1000000000000000.0"),
        (1e-5, "1e-05"),
        (0.0001, "0.0001"),
        (1.5e-7, "1.5e-07"),
        (f64::NAN, "nan"),
        (f64::NEG_INFINITY, "-inf"),
    ];
    for (v, python) in cases {
        assert_eq!(py_float(v), python, "{v}");
    }
    assert_eq!(py_str("n1"), "'n1'");
    assert_eq!(py_str("it's"), "\"it's\"");
    assert_eq!(py_str("a\nb\\"), "'a\\nb\\\\'");
    assert_eq!(py_str("\u{1}"), "'\\x01'");
}

#[test]
fn a_node_id_with_a_control_format_or_separator_character_is_refused() {
    for id in ["a\nb", "a\u{7f}b", "a\u{2028}b", "a\u{2029}b", "a\u{200b}b", "a\u{202e}b", "\u{feff}a", "a\u{e0041}"] {
        let err = Config::new(id, [id, "b"], Timing::default(), 1).unwrap_err().to_string();
        assert!(err.contains("control character") && err.contains("U+"), "{id:?}: {err}");
    }
    for id in ["n1", "ünïcödé", "日本", "a-b_c.d", "emoji-🦀"] {
        Config::new(id, [id, "b"], Timing::default(), 1).unwrap_or_else(|e| panic!("{id:?}: {e}"));
    }
}
