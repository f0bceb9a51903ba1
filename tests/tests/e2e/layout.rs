//! The shape of the workspace, checked on its sources (ARCHITECTURE.md):
//! no module depends on one that depends back on it, `unsafe` only in
//! drop-cli and each block of it explained, no state name compared as a
//! string outside the one place that defines them, and no comment citing a
//! document that is not in the repository.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crates whose modules are checked.
const CRATES: &[&str] = &[
    "drop-core",
    "drop-registry",
    "drop-nat",
    "drop-tunnel",
    "drop-cli",
];
/// The library crates: they forbid `unsafe` outright.
const LIBRARIES: &[&str] = &["drop-core", "drop-registry", "drop-nat", "drop-tunnel"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_owned()
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// One crate's modules: module path (`http::routes`, `` for the root) →
/// the file's code, without comments and without its test module. Modules
/// declared under `#[cfg(test)]` (test files, fakes) are left out.
fn modules(krate: &str) -> BTreeMap<String, String> {
    let src = workspace().join(krate).join("src");
    let texts: BTreeMap<String, String> = rust_files(&src)
        .into_iter()
        .filter(|file| !file.starts_with(src.join("bin")))
        .map(|file| {
            let rel = file.strip_prefix(&src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            (parts.join("::"), std::fs::read_to_string(&file).unwrap())
        })
        .collect();
    let test_only = |module: &str| {
        let name = module.rsplit("::").next().unwrap_or_default();
        texts.get(&parent(module)).is_some_and(|text| {
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            lines
                .windows(2)
                .any(|w| w[0] == "#[cfg(test)]" && w[1].ends_with(&format!("mod {name};")))
        })
    };
    texts
        .iter()
        .filter(|(module, _)| module.is_empty() || !test_only(module))
        .map(|(module, text)| (module.clone(), code_of(text)))
        .collect()
}

/// The code of a file: comments removed, and everything from its
/// `#[cfg(test)]` module on (tests sit at the bottom of each file).
fn code_of(text: &str) -> String {
    let body = text.split("#[cfg(test)]\nmod ").next().unwrap_or_default();
    body.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths a file names with `crate::` or `super::`, as (levels up, where
/// `None` is the crate root; segments).
fn references(code: &str) -> Vec<(Option<usize>, Vec<String>)> {
    let mut found = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let at_boundary = i == 0 || !is_ident(bytes[i - 1]) && bytes[i - 1] != ':';
        let rest: String = bytes[i..bytes.len().min(i + 7)].iter().collect();
        let start = if at_boundary && rest.starts_with("crate::") {
            Some((None, i + 7))
        } else if at_boundary && rest.starts_with("super::") {
            let mut levels = 1;
            let mut j = i + 7;
            while bytes[j..].iter().take(7).collect::<String>() == "super::" {
                levels += 1;
                j += 7;
            }
            Some((Some(levels), j))
        } else {
            None
        };
        let Some((levels, mut j)) = start else {
            i += 1;
            continue;
        };
        let mut segments = Vec::new();
        loop {
            let ident: String = bytes[j..].iter().take_while(|c| is_ident(**c)).collect();
            if ident.is_empty() {
                break;
            }
            j += ident.chars().count();
            segments.push(ident);
            if bytes[j..].iter().take(2).collect::<String>() != "::" {
                break;
            }
            j += 2;
        }
        if bytes.get(j) == Some(&'{') {
            // `path::{a, b::c, d}`: each item's first segment.
            let group: String = bytes[j + 1..].iter().take_while(|c| **c != '}').collect();
            for item in group.split(',') {
                let first: String = item.trim().chars().take_while(|c| is_ident(*c)).collect();
                if !first.is_empty() && first != "self" {
                    let mut path = segments.clone();
                    path.push(first);
                    found.push((levels, path));
                }
            }
        }
        found.push((levels, segments));
        i = j.max(i + 1);
    }
    found
}

/// The child module a module's `pub use child::…Name…` re-exports `name` from.
fn reexport_source(code: &str, name: &str) -> Option<String> {
    code.split(';').find_map(|statement| {
        let statement = statement.trim();
        let path = statement.strip_prefix("pub use ")?;
        let (child, rest) = path.split_once("::")?;
        let names = rest.trim_matches(|c| c == '{' || c == '}');
        names
            .split(',')
            .any(|n| n.trim().rsplit("::").next() == Some(name))
            .then(|| child.trim().to_owned())
    })
}

fn parent(module: &str) -> String {
    module
        .rsplit_once("::")
        .map_or(String::new(), |(p, _)| p.to_owned())
}

fn join(base: &str, segment: &str) -> String {
    if base.is_empty() {
        segment.to_owned()
    } else {
        format!("{base}::{segment}")
    }
}

/// The module a reference lands in: the longest known module prefix, then
/// through re-exports down to the module that defines the name.
fn resolve(
    modules: &BTreeMap<String, String>,
    from: &str,
    levels: Option<usize>,
    segments: &[String],
) -> Option<String> {
    let mut module = match levels {
        None => String::new(),
        Some(n) => (0..n).fold(from.to_owned(), |m, _| parent(&m)),
    };
    let mut rest = segments.iter();
    for segment in rest.by_ref() {
        let deeper = join(&module, segment);
        if modules.contains_key(&deeper) {
            module = deeper;
            continue;
        }
        // A name: follow `pub use` to where it is defined.
        let mut name = segment.as_str();
        while let Some(child) = reexport_source(&modules[&module], name) {
            let deeper = join(&module, &child);
            if !modules.contains_key(&deeper) {
                break;
            }
            module = deeper;
            name = segment;
        }
        break;
    }
    Some(module)
}

/// Edges `from → to` between modules of one crate. A module naming its own
/// descendants (declaring and re-exporting them) is not a dependency.
fn edges(modules: &BTreeMap<String, String>) -> BTreeSet<(String, String)> {
    let mut edges = BTreeSet::new();
    for (from, code) in modules {
        for (levels, segments) in references(code) {
            let Some(to) = resolve(modules, from, levels, &segments) else {
                continue;
            };
            let descendant = from.is_empty() || to.starts_with(&format!("{from}::"));
            if &to != from && !descendant {
                edges.insert((from.clone(), to));
            }
        }
    }
    edges
}

/// A cycle in the graph, if there is one, as the modules along it.
fn find_cycle(edges: &BTreeSet<(String, String)>) -> Option<Vec<String>> {
    let mut graph: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges {
        graph.entry(a).or_default().push(b);
    }
    fn visit<'a>(
        node: &'a str,
        graph: &BTreeMap<&'a str, Vec<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = path[at..].iter().map(|s| s.to_string()).collect();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    let nodes: Vec<&str> = graph.keys().copied().collect();
    nodes
        .into_iter()
        .find_map(|node| visit(node, &graph, &mut Vec::new(), &mut done))
}

/// No file-level module depends on one that depends back on it, and the
/// top-level modules of each crate (drop-core's `page`, `http`, `auth`,
/// `supervise`, `daemon`…) form layers.
#[test]
fn no_crate_has_a_module_cycle() {
    for krate in CRATES {
        let modules = modules(krate);
        assert!(modules.len() > 1, "{krate} has modules");
        let files = edges(&modules);
        assert_eq!(find_cycle(&files), None, "{krate}: a cycle between files");
        let top = |m: &str| m.split("::").next().unwrap_or_default().to_owned();
        let layers: BTreeSet<(String, String)> = files
            .iter()
            .map(|(a, b)| (top(a), top(b)))
            .filter(|(a, b)| a != b && !a.is_empty() && !b.is_empty())
            .collect();
        assert_eq!(
            find_cycle(&layers),
            None,
            "{krate}: a cycle between top-level modules"
        );
    }
}

/// The checker itself sees a cycle where there is one, and follows
/// re-exports to the module that defines a name.
#[test]
fn the_cycle_checker_finds_cycles_through_reexports() {
    let modules: BTreeMap<String, String> = [
        ("", "mod a; mod b;"),
        ("a", "pub mod inner; pub use inner::Thing;"),
        ("a::inner", "use crate::b::Other; pub struct Thing;"),
        ("b", "use super::a::Thing; pub struct Other;"),
    ]
    .into_iter()
    .map(|(m, c)| (m.to_owned(), c.to_owned()))
    .collect();
    let found = edges(&modules);
    assert!(
        found.contains(&("b".to_owned(), "a::inner".to_owned())),
        "{found:?}"
    );
    assert!(find_cycle(&found).is_some(), "{found:?}");
    let mut acyclic = modules.clone();
    acyclic.insert("a::inner".into(), "pub struct Thing;".into());
    assert_eq!(find_cycle(&edges(&acyclic)), None);
}

/// The libraries forbid `unsafe`; drop-cli has it only where nothing safe
/// exists, each block under a `SAFETY:` comment; the tests have none.
#[test]
fn unsafe_code_lives_only_in_drop_cli_and_is_explained() {
    for krate in LIBRARIES {
        let lib = std::fs::read_to_string(workspace().join(krate).join("src/lib.rs")).unwrap();
        assert!(
            lib.contains("#![forbid(unsafe_code)]"),
            "{krate} forbids unsafe"
        );
    }
    let mut dirs: Vec<PathBuf> = LIBRARIES.iter().map(|k| workspace().join(k)).collect();
    dirs.push(workspace().join("tests"));
    let this_file = workspace().join(file!());
    for file in dirs
        .iter()
        .flat_map(|d| rust_files(d))
        .filter(|f| *f != this_file)
    {
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        assert!(
            !code.contains("unsafe {") && !code.contains("unsafe fn"),
            "{}: unsafe outside drop-cli",
            file.display()
        );
    }
    for file in rust_files(&workspace().join("drop-cli")) {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            if line.contains("unsafe {") {
                let explained = lines[n.saturating_sub(4)..n]
                    .iter()
                    .any(|l| l.trim_start().starts_with("// SAFETY:"));
                assert!(
                    explained,
                    "{}:{}: unsafe without SAFETY",
                    file.display(),
                    n + 1
                );
            }
        }
    }
}

/// A tunnel phase, a tunnel choice or a page kind is compared as an enum:
/// its names appear as strings only where drop-registry defines them.
#[test]
fn state_names_are_written_in_one_place() {
    let names = [
        "\"starting\"",
        "\"up\"",
        "\"down\"",
        "\"rate_limited\"",
        "\"failed\"",
        "\"auto\"",
        "\"on\"",
        "\"off\"",
        "\"app\"",
        "\"static\"",
        "\"behind NAT\"",
        "\"public IP\"",
        "\"already_running\"",
        "\"not_running\"",
    ];
    let home = workspace().join("drop-registry/src/states.rs");
    for krate in CRATES {
        for file in rust_files(&workspace().join(krate).join("src")) {
            if file == home {
                continue;
            }
            let code = code_of(&std::fs::read_to_string(&file).unwrap());
            // Attributes name arguments and functions (`conflicts_with = "app"`).
            let code: Vec<&str> = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("#["))
                .collect();
            let code = code.join("\n");
            for name in names {
                assert!(
                    !code.contains(name),
                    "{}: the state name {name} as a string",
                    file.display()
                );
            }
        }
    }
}

/// Comments and docs point at README.md, ARCHITECTURE.md or SECURITY.md,
/// which are in the repository, never at documents outside it.
#[test]
fn nothing_cites_a_document_outside_the_repository() {
    let root = workspace();
    for doc in ["README.md", "ARCHITECTURE.md", "SECURITY.md"] {
        assert!(root.join(doc).is_file(), "{doc} is in the repository");
    }
    let outside = [
        "SPEC.md",
        "DESIGN.md",
        "STYLE.md",
        "cloudflared-notes",
        "../shared",
        "the seed",
    ];
    let mut files: Vec<PathBuf> = CRATES
        .iter()
        .chain(["tests"].iter())
        .flat_map(|k| rust_files(&root.join(k)))
        .collect();
    for extra in [
        "README.md",
        "ARCHITECTURE.md",
        "SECURITY.md",
        "install.sh",
        "uninstall.sh",
    ] {
        files.push(root.join(extra));
    }
    let this_file = root.join(file!());
    for file in files.into_iter().filter(|f| *f != this_file) {
        let text = std::fs::read_to_string(&file).unwrap();
        for name in outside {
            assert!(
                !text.contains(name),
                "{} cites `{name}`, which is not in the repository",
                file.display()
            );
        }
    }
}
