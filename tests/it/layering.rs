//! The layering of `src/`: imports run one way, down. A module may use the modules in the rows
//! below its own, never one above or beside it. This is the one place the allowed edges are
//! written; ARCHITECTURE.md explains them.
//!
//! The check reads the source as text: every `crate::<module>` path (and `odradek::<module>`
//! in the binary), `use crate::{a, b}` groups, and `super::` chains that climb to the crate
//! root. Comments are skipped, since they name modules without importing them.

use std::collections::BTreeMap;
use std::path::Path;

/// Top to bottom. The last rows are leaves: anyone may use them, and they use only what is
/// below them.
const LAYERS: &[&[&str]] = &[
    &["main"],
    &["tools"],
    &["server"],
    &["network"],
    &["api"],
    &["txn"],
    &["group"],
    &["controller"],
    &["replica"],
    &["metadata"],
    &["log"],
    &["config"],
    &["client"],
    &["quota"],
    &["security"],
    &["protocol", "metrics", "alloc", "logging"],
];

/// The crate root itself (`lib.rs`) declares the modules and imports none of them.
const ROOT_FILES: &[&str] = &["lib"];

fn row(module: &str) -> Option<usize> {
    LAYERS.iter().position(|r| r.contains(&module))
}

/// The module path of a file under `src/`: `api/fetch.rs` is `[api, fetch]`, `log/mod.rs` is
/// `[log]`.
fn module_path(relative: &str) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The top-level modules one line of code names, from a file at `path`.
fn top_level_names(line: &str, path: &[String], crate_names: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for prefix in crate_names {
        let pattern = format!("{prefix}::");
        let mut rest = line;
        while let Some(at) = rest.find(&pattern) {
            let before_ok = rest[..at].chars().next_back().is_none_or(|c| !is_ident(c));
            let after = &rest[at + pattern.len()..];
            if before_ok {
                if let Some(group) = after.strip_prefix('{') {
                    // `use crate::{a, b::c}`: each item's first segment.
                    let inner = group.split('}').next().unwrap_or("");
                    for item in inner.split(',') {
                        let name: String =
                            item.trim().chars().take_while(|c| is_ident(*c)).collect();
                        if !name.is_empty() {
                            found.push(name);
                        }
                    }
                } else {
                    let name: String = after.chars().take_while(|c| is_ident(*c)).collect();
                    if !name.is_empty() {
                        found.push(name);
                    }
                }
            }
            rest = after;
        }
    }
    // `super::super::x` from deep enough reaches the crate root.
    let mut rest = line;
    while let Some(at) = rest.find("super::") {
        let before_ok = rest[..at].chars().next_back().is_none_or(|c| !is_ident(c));
        let mut tail = &rest[at..];
        let mut climbs = 0;
        while let Some(t) = tail.strip_prefix("super::") {
            climbs += 1;
            tail = t;
        }
        if before_ok && climbs >= path.len() {
            let name: String = tail.chars().take_while(|c| is_ident(*c)).collect();
            if !name.is_empty() {
                found.push(name);
            }
        }
        rest = tail;
    }
    found
}

/// Every import that breaks the layering, as "file:line: from -> to" lines, for sources given
/// as (path relative to `src/`, text).
fn violations(sources: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (relative, text) in sources {
        let path = module_path(relative);
        let Some(from) = path.first() else { continue };
        if ROOT_FILES.contains(&from.as_str()) {
            continue;
        }
        let Some(from_row) = row(from) else {
            out.push(format!(
                "{relative}: module `{from}` is in no layer: add it to LAYERS"
            ));
            continue;
        };
        let crate_names: &[&str] = if from == "main" {
            &["crate", "odradek"]
        } else {
            &["crate"]
        };
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for to in top_level_names(code, &path, crate_names) {
                if &to == from {
                    continue;
                }
                match row(&to) {
                    Some(to_row) if to_row > from_row => {}
                    Some(_) => out.push(format!("src/{relative}:{}: {from} -> {to}", n + 1)),
                    // Not a module of ours (a crate-root item such as a macro): not an edge.
                    None => {}
                }
            }
        }
    }
    out
}

fn read_tree(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        if path.is_dir() {
            read_tree(&path, &relative, out);
        } else if name.ends_with(".rs") {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.insert(relative, text);
        }
    }
}

#[test]
fn imports_run_one_way_down() {
    let mut sources = BTreeMap::new();
    read_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        "",
        &mut sources,
    );
    assert!(sources.len() > 50, "read only {} files", sources.len());
    let bad = violations(&sources);
    assert!(
        bad.is_empty(),
        "imports against the layering (see LAYERS in tests/it/layering.rs):\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_check_finds_an_upward_import() {
    let sources: BTreeMap<String, String> = [
        // Allowed: down, to a leaf, within the module, and names in comments.
        ("api/fetch.rs", "use crate::replica::ReplicaManager;\nuse crate::metrics;\nuse crate::api::errors;\n// crate::server is only named here\n"),
        // Upward, in each form the check reads.
        ("log/segment.rs", "use crate::api::errors;\n"),
        ("replica/fetcher.rs", "use crate::{config, tools::client};\n"),
        ("metadata/zk.rs", "    let x = crate::controller::Controller::new();\n"),
        ("log/cleaner/filter.rs", "use super::super::super::group::Group;\n"),
        ("group/mod.rs", "use crate::txn::Coordinator;\n"),
        // Same row: leaves do not use each other.
        ("metrics/mod.rs", "use crate::protocol::frame;\n"),
        ("main.rs", "use odradek::server;\nuse odradek::tools;\n"),
        ("surprise.rs", "fn f() {}\n"),
    ]
    .into_iter()
    .map(|(p, t)| (p.to_string(), t.to_string()))
    .collect();
    let bad = violations(&sources);
    assert_eq!(
        bad,
        [
            "src/group/mod.rs:1: group -> txn",
            "src/log/cleaner/filter.rs:1: log -> group",
            "src/log/segment.rs:1: log -> api",
            "src/metadata/zk.rs:1: metadata -> controller",
            "src/metrics/mod.rs:1: metrics -> protocol",
            "src/replica/fetcher.rs:1: replica -> tools",
            "surprise.rs: module `surprise` is in no layer: add it to LAYERS",
        ]
    );
}

/// The repository is self-contained: nothing in `src/` or `tests/` reads the workplace's
/// shared folder beside it (the Kafka 2.4.1 fixture lives in `tests/fixtures`), so a fresh clone
/// anywhere runs every test.
#[test]
fn nothing_reads_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = BTreeMap::new();
    read_tree(&root.join("src"), "src", &mut sources);
    read_tree(&root.join("tests"), "tests", &mut sources);
    let outside: Vec<&String> = sources
        .iter()
        .filter(|(_, text)| text.contains(concat!("..", "/shared")))
        .map(|(path, _)| path)
        .collect();
    assert!(
        outside.is_empty(),
        "read from outside the repository: {outside:?}"
    );
}
