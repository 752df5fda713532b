//! The module graph of `api`, read from the code: which module uses which
//! (`super::name` in each file). It must have no cycle, and
//! docs/architecture.md must show it as it is (this test prints the block to
//! paste when it does not).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut graph = BTreeMap::new();
    for file in std::fs::read_dir(&dir).unwrap() {
        let path = file.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.extension().is_none_or(|e| e != "rs") || name.ends_with("_tests") || name == "mod" {
            continue;
        }
        let code = std::fs::read_to_string(&path).unwrap();
        // Test modules inside a file (`#[cfg(test)] mod tests { … }`) do not count.
        let code = code.split("#[cfg(test)]\nmod tests").next().unwrap();
        let uses: BTreeSet<String> = code
            .match_indices("super::")
            .map(|(i, _)| {
                code[i + 7..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect::<String>()
            })
            .filter(|m| !m.is_empty() && *m != name)
            .collect();
        graph.insert(name, uses);
    }
    graph
}

/// The block docs/architecture.md shows: one line per module that uses others.
fn block(graph: &BTreeMap<String, BTreeSet<String>>) -> String {
    let mut out = String::from("```text\n");
    for (module, uses) in graph.iter().filter(|(_, u)| !u.is_empty()) {
        let uses: Vec<&str> = uses.iter().map(String::as_str).collect();
        out.push_str(&format!("{module} → {}\n", uses.join(", ")));
    }
    out.push_str("```");
    out
}

fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        graph: &BTreeMap<String, BTreeSet<String>>,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            return Some(path[at..].iter().cloned().chain([node.to_string()]).collect());
        }
        if !done.insert(node.to_string()) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(graph, next, path, done) {
                return Some(found);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|n| visit(graph, n, &mut Vec::new(), &mut done))
}

#[test]
fn the_api_modules_form_no_cycle_and_the_architecture_page_shows_them() {
    let graph = graph();
    assert!(graph.contains_key("obtain") && graph["live"].contains("obtain"), "{graph:?}");
    if let Some(cycle) = cycle(&graph) {
        panic!("api modules use each other in a cycle: {}", cycle.join(" → "));
    }
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md")).unwrap();
    let expected = block(&graph);
    assert!(
        doc.contains(&expected),
        "docs/architecture.md's module graph is not the code's; it is:\n\n{expected}\n"
    );
}

#[test]
fn a_cycle_is_found() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["a".to_string()])),
    ]
    .into();
    assert_eq!(cycle(&graph), Some(vec!["a".into(), "b".into(), "a".into()]));
}
