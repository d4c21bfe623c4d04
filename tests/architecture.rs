//! The layers of docs/architecture.md, kept true: each module of the crate may use only the
//! layers below it. A `crate::<layer>` path in a file of a layer not allowed to see it fails here.

use std::fs;
use std::path::Path;

/// Each layer and the layers it may use (besides itself).
const LAYERS: &[(&str, &[&str])] = &[
    ("seed", &[]),
    ("engine", &[]),
    ("faults", &["engine"]),
    ("sim", &["engine", "faults", "seed"]),
    ("runtime", &["engine", "faults", "seed"]),
    ("python", &["engine", "faults", "seed", "sim", "runtime"]),
];

fn rust_files(path: &Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for entry in fs::read_dir(path).expect("readable src") {
            rust_files(&entry.expect("entry").path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

fn layer_of(file: &Path, src: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component").as_os_str().to_string_lossy().to_string();
    first.trim_end_matches(".rs").to_string()
}

#[test]
fn every_layer_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let layer = layer_of(file, &src);
        let Some((_, allowed)) = LAYERS.iter().find(|(name, _)| *name == layer) else { continue };
        let text = fs::read_to_string(file).expect("readable file");
        for (line_no, line) in text.lines().enumerate() {
            for (other, _) in LAYERS {
                let used = line.contains(&format!("crate::{other}::")) || line.contains(&format!("crate::{other}{{"));
                if used && *other != layer && !allowed.contains(other) {
                    wrong.push(format!("{}:{}: {layer} uses {other}", file.display(), line_no + 1));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "layer rule broken:\n{}", wrong.join("\n"));
    assert!(files.len() > 20, "the walk found the sources");
}

#[test]
fn the_layer_table_matches_the_crate_root() {
    let lib = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).expect("lib.rs");
    for (name, _) in LAYERS {
        assert!(lib.contains(&format!("mod {name};")), "src/lib.rs declares the layer {name}");
    }
}
