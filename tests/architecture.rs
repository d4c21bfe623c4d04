//! The layers of docs/architecture.md, kept true. Each layer is a crate, so the compiler refuses an
//! upward `use`; what is left to check is that no crate's manifest gains a dependency its layer may
//! not have (the engine pulling in tokio, the simulator depending on the runtime, ...).

use std::fs;
use std::path::Path;

/// Each workspace crate, the crates of ours it may depend on, and outside crates it must not.
const LAYERS: &[(&str, &[&str], &[&str])] = &[
    (
        "crates/engine",
        &[],
        &["tokio", "tokio-util", "futures-util", "pyo3", "postcard", "hmac", "sha2", "getrandom", "log"],
    ),
    ("crates/sim", &["quorate-engine"], &["tokio", "pyo3", "getrandom"]),
    ("crates/runtime", &["quorate-engine"], &["pyo3"]),
    (".", &["quorate-engine", "quorate-sim", "quorate-runtime"], &[]),
];

const OURS: &[&str] = &["quorate-engine", "quorate-sim", "quorate-runtime"];

/// The names in a manifest's `[dependencies]` table (not dev-dependencies: a test may use more).
fn dependencies(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == "[dependencies]";
            continue;
        }
        if inside && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.']).next().expect("a key").trim();
            names.push(name.to_string());
        }
    }
    names
}

fn manifest(dir: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join("Cargo.toml");
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_crate_depends_only_on_the_layers_below_it() {
    let mut wrong = Vec::new();
    for (dir, allowed, forbidden) in LAYERS {
        let deps = dependencies(&manifest(dir));
        assert!(!deps.is_empty(), "{dir}: the walk found its [dependencies]");
        for dep in &deps {
            if OURS.contains(&dep.as_str()) && !allowed.contains(&dep.as_str()) {
                wrong.push(format!("{dir} depends on {dep}, a layer it may not use"));
            }
            if forbidden.contains(&dep.as_str()) {
                wrong.push(format!("{dir} depends on {dep}, which its layer must not pull in"));
            }
        }
    }
    assert!(wrong.is_empty(), "layer rule broken:\n{}", wrong.join("\n"));
}

#[test]
fn the_layer_table_names_every_workspace_member() {
    let root = manifest(".");
    let members = root.lines().find(|l| l.starts_with("members")).expect("a [workspace] members list");
    let listed: Vec<&str> = members.split('"').skip(1).step_by(2).collect();
    let tabled: Vec<&str> = LAYERS.iter().map(|(dir, _, _)| *dir).filter(|d| *d != ".").collect();
    assert_eq!(listed, tabled, "tests/architecture.rs's table and Cargo.toml's members agree");
}

#[test]
fn the_manifest_reader_sees_what_a_manifest_says() {
    let text = "[package]\nname = \"x\"\n[dependencies]\n# why\nrand = \"1\"\nquorate-engine = { path = \"e\" }\nserde.workspace = true\n[dev-dependencies]\ntokio = \"1\"\n";
    assert_eq!(dependencies(text), ["rand", "quorate-engine", "serde"]);
}
