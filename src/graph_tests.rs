//! The module graphs of `src/api` and `crates/banatie-core`, read from the
//! code (every `crate::`, `super::` and `self::` path outside comments and
//! test modules): neither may have a cycle; in `api`, arrows point down the
//! rooms only (`dispatch` → `routes` → `auth` → `live` → `records` → `kv` →
//! the base: `context`, `request`, `reply`, `log`), so the pipeline never
//! imports a route handler. Core's folders are by role (`http`, `stored`,
//! `decide`, `variant`, …) and its modules, not its folders, are ordered.
//! docs/architecture.md shows both graphs as they are (the test
//! prints the blocks to paste when it does not).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// One tree of modules: where its files are, and how its own paths start.
struct Tree {
    dir: PathBuf,
    /// The absolute prefix of its paths (`crate::api::`, `crate::`).
    prefix: &'static str,
}

fn api() -> Tree {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    Tree { dir, prefix: "crate::api::" }
}

fn core() -> Tree {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/banatie-core/src");
    Tree { dir, prefix: "crate::" }
}

/// Each module of the tree (its path, `a::b`; the root is ``), and its code
/// without comments and test modules.
fn modules(tree: &Tree) -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "fakes") {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&tree.dir, &mut files);
    let mut modules = BTreeMap::new();
    for file in files {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        if stem.ends_with("_tests") {
            continue;
        }
        let relative = file.strip_prefix(&tree.dir).unwrap().with_extension("");
        let mut segments: Vec<String> =
            relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        if matches!(segments.last().map(String::as_str), Some("mod" | "lib")) {
            segments.pop();
        }
        let code = std::fs::read_to_string(&file).unwrap();
        let code: String =
            code.lines().filter(|l| !l.trim_start().starts_with("//")).map(|l| format!("{l}\n")).collect();
        modules.insert(segments.join("::"), without_tests(&code));
    }
    modules
}

/// `code` without its `#[cfg(test)]` items (a test module, a helper for
/// tests): each up to its `;`, or its braces' end.
fn without_tests(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let (mut depth, mut end) = (0, item.len());
        for (i, c) in item.char_indices().skip("#[cfg(test)]".len()) {
            match c {
                '{' => depth += 1,
                '}' if depth == 1 => {
                    end = i + 1;
                    break;
                }
                '}' => depth -= 1,
                ';' if depth == 0 => {
                    end = i + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// Every path named after one of `starts` in `code`, as segments: `a::b`,
/// and each leaf of `a::{b, c::{d, e}}`.
fn paths(code: &str, start: &str) -> Vec<(usize, Vec<String>)> {
    fn tree(s: &[u8], mut i: usize, base: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
        let mut path = base;
        loop {
            if s.get(i) == Some(&b'{') {
                i += 1;
                loop {
                    while s.get(i).is_some_and(|c| c.is_ascii_whitespace() || *c == b',') {
                        i += 1;
                    }
                    if s.get(i).is_none_or(|c| *c == b'}') {
                        return i + 1;
                    }
                    i = tree(s, i, path.clone(), out);
                }
            }
            let from = i;
            while s.get(i).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
                i += 1;
            }
            if i > from {
                path.push(String::from_utf8_lossy(&s[from..i]).into_owned());
            }
            if s[i..].starts_with(b"::") {
                i += 2;
                continue;
            }
            out.push(path);
            return i;
        }
    }
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    for (at, _) in code.match_indices(start) {
        let boundary =
            at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || matches!(bytes[at - 1], b'_' | b':'));
        if !boundary {
            continue;
        }
        let mut leaves = Vec::new();
        tree(bytes, at + start.len(), Vec::new(), &mut leaves);
        found.extend(leaves.into_iter().map(|p| (at, p)));
    }
    found
}

/// `pub use a::B;` and `pub use a::{B, C};` in a module: `B` names the module `a` (a
/// re-export, such as core's `Error`).
fn reexports(modules: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut aliases = BTreeMap::new();
    for (module, code) in modules {
        let join = |s: &str| if module.is_empty() { s.to_string() } else { format!("{module}::{s}") };
        for statement in code.split("pub use ").skip(1).filter_map(|s| s.split(';').next()) {
            let statement = statement.trim().trim_start_matches("self::");
            let (from, names) = match statement.split_once("::{") {
                Some((from, group)) => {
                    (from, group.trim_end_matches('}').split(',').map(str::trim).collect())
                }
                None => match statement.rsplit_once("::") {
                    Some((from, name)) => (from, vec![name]),
                    None => continue,
                },
            };
            if from.starts_with("crate::") || from.starts_with("super::") {
                continue;
            }
            for name in names.into_iter().filter(|n| !n.is_empty() && !n.contains("::")) {
                aliases.insert(join(name), join(from));
            }
        }
    }
    aliases
}

fn graph(tree: &Tree) -> Graph {
    let modules = modules(tree);
    let aliases = reexports(&modules);
    // The module a path names: its longest prefix that is one.
    let resolve = |segments: &[String]| -> Option<String> {
        (1..=segments.len()).rev().find_map(|n| {
            let path = segments[..n].join("::");
            let path = aliases.get(&path).cloned().unwrap_or(path);
            modules.contains_key(&path).then_some(path)
        })
    };
    let mut graph = Graph::new();
    for (module, code) in &modules {
        let here: Vec<String> = module.split("::").filter(|s| !s.is_empty()).map(String::from).collect();
        let mut uses = BTreeSet::new();
        for (_, path) in paths(code, tree.prefix) {
            uses.extend(resolve(&path));
        }
        for (_, path) in paths(code, "super::") {
            // `super::super::x` arrives as `super`, `x`.
            let ups = path.iter().take_while(|s| *s == "super").count();
            let mut base = here.clone();
            base.truncate(base.len().saturating_sub(1 + ups));
            base.extend(path[ups..].iter().cloned());
            uses.extend(resolve(&base));
        }
        // `self::child::…`, and a child named without `self::` (`child::…`).
        let children = modules.keys().filter_map(|m| {
            let rest =
                if module.is_empty() { Some(m.as_str()) } else { m.strip_prefix(&format!("{module}::")) };
            rest.filter(|r| !r.is_empty() && !r.contains("::"))
        });
        let starts: Vec<String> =
            ["self".to_string()].into_iter().chain(children.map(String::from)).collect();
        for start in starts {
            for (_, path) in paths(code, &format!("{start}::")) {
                let mut base = here.clone();
                if start != "self" {
                    base.push(start.clone());
                }
                base.extend(path);
                uses.extend(resolve(&base));
            }
        }
        uses.remove(module);
        graph.insert(module.clone(), uses);
    }
    graph
}

fn cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        graph: &Graph,
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

/// How far down its tree a module's room is: a module may use modules of
/// its own room and of rooms ranked lower, never higher.
fn rank(ranks: &[(&str, u8)], module: &str) -> u8 {
    let room = module.split("::").next().unwrap_or_default();
    ranks
        .iter()
        .find(|(r, _)| *r == room)
        .map(|(_, n)| *n)
        .unwrap_or_else(|| panic!("{module}: no room ranked"))
}

const API_RANKS: &[(&str, u8)] = &[
    ("", 7),
    ("dispatch", 6),
    ("routes", 5),
    ("auth", 4),
    ("live", 3),
    ("records", 2),
    ("kv", 1),
    ("context", 0),
    ("request", 0),
    ("reply", 0),
    ("log", 0),
];

/// The arrows that point up a tree's rooms.
fn upward(graph: &Graph, ranks: &[(&str, u8)]) -> Vec<String> {
    let mut up = Vec::new();
    for (module, uses) in graph {
        for used in uses {
            let (from, to) = (module.split("::").next(), used.split("::").next());
            if from != to && rank(ranks, module) < rank(ranks, used) {
                up.push(format!("{module} → {used}"));
            }
        }
    }
    up
}

/// The block docs/architecture.md shows: one line per module that uses others.
fn block(graph: &Graph) -> String {
    let mut out = String::from("```text\n");
    for (module, uses) in graph.iter().filter(|(_, u)| !u.is_empty()) {
        let uses: Vec<&str> = uses.iter().map(String::as_str).collect();
        let name = if module.is_empty() { "(root)" } else { module };
        out.push_str(&format!("{name} → {}\n", uses.join(", ")));
    }
    out.push_str("```");
    out
}

fn check(name: &str, tree: &Tree, ranks: &[(&str, u8)]) {
    let graph = graph(tree);
    if let Some(cycle) = cycle(&graph) {
        panic!("{name} modules use each other in a cycle: {}", cycle.join(" → "));
    }
    let up = if ranks.is_empty() { Vec::new() } else { upward(&graph, ranks) };
    assert!(up.is_empty(), "{name}: arrows that point up the rooms:\n{}", up.join("\n"));
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md")).unwrap();
    let expected = block(&graph);
    assert!(
        doc.contains(&expected),
        "docs/architecture.md's {name} module graph is not the code's; it is:\n\n{expected}\n"
    );
}

#[test]
fn the_api_modules_point_down_their_rooms_without_a_cycle_as_the_architecture_page_shows() {
    let graph = graph(&api());
    assert!(
        graph["live::obtain"].contains("live::flight") && graph["dispatch"].contains("routes::live"),
        "{graph:?}"
    );
    check("api", &api(), API_RANKS);
}

#[test]
fn the_core_modules_form_no_cycle_as_the_architecture_page_shows() {
    check("core", &core(), &[]);
}

#[test]
fn a_cycle_and_an_upward_arrow_are_found() {
    let graph: Graph = [
        ("live::obtain".to_string(), BTreeSet::from(["routes::purge".to_string()])),
        ("routes::purge".to_string(), BTreeSet::from(["live::obtain".to_string()])),
    ]
    .into();
    assert_eq!(cycle(&graph).map(|c| c.len()), Some(3));
    assert_eq!(upward(&graph, API_RANKS), ["live::obtain → routes::purge"]);
}

#[test]
fn test_items_do_not_count() {
    let code = "use a::b;\n#[cfg(test)]\nmod tests {\n fn x() { use super::c; }\n}\nfn after() {}\n#[cfg(test)]\nmod other;\nuse d::e;\n";
    assert_eq!(without_tests(code), "use a::b;\n\nfn after() {}\n\nuse d::e;\n");
}

#[test]
fn paths_are_read_through_groups_and_levels() {
    let code = "use super::{a, b::{c, d}};\nlet x = super::super::e::f(crate::api::g::h);";
    let found: Vec<Vec<String>> = paths(code, "super::").into_iter().map(|(_, p)| p).collect();
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(found, [s(&["a"]), s(&["b", "c"]), s(&["b", "d"]), s(&["super", "e", "f"])]);
    let absolute: Vec<Vec<String>> = paths(code, "crate::api::").into_iter().map(|(_, p)| p).collect();
    assert_eq!(absolute, [s(&["g", "h"])]);
}
