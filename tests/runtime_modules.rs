//! The runtime crate's modules form a one-way graph: no two modules use each other, directly or
//! around a circle (node -> driver -> node was one; shared -> monitor -> shared another). Read from
//! the sources: every `super::NAME` and `crate::NAME` outside a `#[cfg(test)]` module is an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

fn runtime_src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/runtime/src")
}

/// Every module of the crate (a file beside lib.rs) and the sibling modules it names.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let dir = runtime_src();
    let mut sources = BTreeMap::new();
    for entry in fs::read_dir(&dir).expect("crates/runtime/src") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_stem().expect("a file name").to_string_lossy().to_string();
        // `*_tests.rs` are unit tests, included by their module with `#[path]`.
        if path.extension().is_some_and(|e| e == "rs") && name != "lib" && !name.ends_with("_tests") {
            sources.insert(name, fs::read_to_string(&path).expect("a readable source"));
        }
    }
    let names: BTreeSet<String> = sources.keys().cloned().collect();
    sources
        .into_iter()
        .map(|(name, text)| {
            // Unit tests may reach anywhere (`use super::*`); the graph is about the code itself.
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let mut uses = BTreeSet::new();
            for prefix in ["super::", "crate::"] {
                for (i, _) in code.match_indices(prefix) {
                    let rest = &code[i + prefix.len()..];
                    let used: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if names.contains(&used) && used != name {
                        uses.insert(used);
                    }
                    if rest.starts_with('{') {
                        let inner = &rest[1..rest.find('}').unwrap_or(rest.len())];
                        for part in inner.split(',') {
                            let used = part.trim().split("::").next().unwrap_or("").trim().to_string();
                            if names.contains(&used) && used != name {
                                uses.insert(used);
                            }
                        }
                    }
                }
            }
            (name, uses)
        })
        .collect()
}

/// A circle through `start`, if there is one: the modules along it, `start` first and last.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        start: &str,
        at: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(at).into_iter().flatten() {
            path.push(next.clone());
            if next == start || (seen.insert(next.clone()) && walk(graph, start, next, path, seen)) {
                return true;
            }
            path.pop();
        }
        false
    }
    let mut path = vec![start.to_string()];
    walk(graph, start, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn the_runtime_modules_form_a_one_way_graph() {
    let graph = module_graph();
    assert!(graph.len() >= 10, "the walk found the runtime's modules: {:?}", graph.keys());
    let circles: Vec<String> = graph.keys().filter_map(|m| circle(&graph, m)).map(|c| c.join(" -> ")).collect();
    assert!(circles.is_empty(), "modules that use each other:\n{}", circles.join("\n"));
}

#[test]
fn lib_rs_declares_every_module_file() {
    let lib = fs::read_to_string(runtime_src().join("lib.rs")).expect("lib.rs");
    for module in module_graph().keys() {
        assert!(lib.contains(&format!("mod {module};")), "lib.rs declares {module}");
    }
}

#[test]
fn the_graph_reader_sees_both_spellings_of_a_use() {
    let graph = module_graph();
    assert!(graph["node"].contains("driver"), "`use super::driver::Driver;`");
    assert!(graph["driver"].contains("command"), "`use super::command::{{...}};`");
    assert!(!graph["record"].contains("shared"), "record is plain data");
}
