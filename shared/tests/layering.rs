//! The layering of `shared/src`, as `lib.rs` states it, holds: no module uses a module of a higher
//! layer, no two modules use each other (directly or round a circle), the vendor modules never
//! use `jobs`, and the job handlers never use one another.
//!
//! It reads the source as text: every `use crate::…` / `use super::…` tree and every inline
//! `crate::…` / `super::…` path outside comments and `#[cfg(test)]` items, resolved to the
//! longest module path that is a file. `#[cfg(test)]` code may reach anywhere (tests build
//! fixtures from every layer), so it is left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The vendor modules: they adapt an API and must not know the jobs that use them.
const VENDORS: &[&str] = &["salesforce", "vapi"];
/// The job handlers: the worker dispatches to them; none of them uses another.
const HANDLERS: &[&str] = &[
    "jobs::dial",
    "jobs::reconcile",
    "jobs::report",
    "jobs::handoff",
    "jobs::optout",
    "jobs::reroute",
];

type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn shared_src_reads_top_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("shared/src/lib.rs");
    let layers = parse_layers(&lib).expect("the layer list in lib.rs's //! docs");
    let graph = module_graph(&src);
    assert!(
        graph.len() > 40,
        "read only {} modules from {}: the walk is broken",
        graph.len(),
        src.display()
    );
    let problems = check(&graph, &layers);
    assert!(
        problems.is_empty(),
        "shared/src breaks its layering (see the list in shared/src/lib.rs):\n  {}",
        problems.join("\n  ")
    );
}

/// Known edges of today's tree, so a resolver that sees nothing cannot pass the test above.
#[test]
fn the_graph_sees_real_uses() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    for (from, to) in [
        ("jobs::worker", "jobs::dial"),
        ("jobs::dial", "jobs::context"),
        ("queue", "queue::item"),
        ("store", "config"),
        ("vapi::transfer", "queue::item"),
    ] {
        assert!(
            graph.get(from).is_some_and(|t| t.contains(to)),
            "{from} should use {to}; it uses {:?}",
            graph.get(from)
        );
    }
}

#[test]
fn an_upward_use_a_circle_and_an_unlisted_module_are_reported() {
    let layers = parse_layers(
        "//! - layer 0, base: `ids`\n//! - layer 1, settings: `config`\n//! - layer 2, apps: `jobs`, `vapi`\n",
    )
    .unwrap();
    let mut g = Graph::new();
    let mut edge = |a: &str, b: &str| {
        g.entry(a.to_owned()).or_default().insert(b.to_owned());
        g.entry(b.to_owned()).or_default();
    };
    edge("ids", "config"); // upward
    edge("jobs::dial", "jobs::report"); // handlers
    edge("jobs::report", "jobs::dial"); // … and a circle
    edge("vapi::tools", "jobs::worker"); // vendor into jobs
    edge("config", "mystery"); // not listed
    let problems = check(&g, &layers).join("\n");
    for expected in [
        "ids (layer 0) uses config (layer 1)",
        "circle: jobs::dial -> jobs::report -> jobs::dial",
        "jobs::dial uses the handler jobs::report",
        "vapi::tools uses jobs::worker",
    ] {
        assert!(
            problems.contains(expected),
            "{expected:?} not in:\n{problems}"
        );
    }
    assert!(problems.contains("mystery is in no layer"), "{problems}");

    let mut clean = Graph::new();
    clean
        .entry("jobs::worker".into())
        .or_default()
        .insert("jobs::dial".into());
    clean
        .entry("jobs::dial".into())
        .or_default()
        .insert("config".into());
    clean
        .entry("config".into())
        .or_default()
        .insert("ids".into());
    clean.entry("ids".into()).or_default();
    assert!(check(&clean, &layers).is_empty());
}

#[test]
fn use_trees_comments_and_test_modules_are_read_right() {
    let text = r#"
//! use crate::vapi::nothing;
use crate::{config::{Env, Problems}, store::{self, Item}};
use super::item::JobKind;
fn f() { let s = "crate::in_a_string"; crate::calls::read_call(); /* crate::hidden */ }
#[cfg(test)]
mod tests {
    use crate::routing::Routing;
    fn g() { let _ = '{'; }
}
fn after() { crate::telemetry::metric(); }
"#;
    let files: BTreeSet<String> = [
        "config",
        "store",
        "queue",
        "queue::item",
        "queue::skipped",
        "calls",
        "routing",
        "telemetry",
        "vapi",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let used = uses_of("queue::skipped", text, &files);
    let want: BTreeSet<String> = ["config", "store", "queue::item", "calls", "telemetry"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(used, want);
}

// ---------------------------------------------------------------------------------------------

/// `module path prefix -> layer`, from the `//! - layer N, what: `a`, `b::c`` lines of lib.rs.
fn parse_layers(lib: &str) -> Result<BTreeMap<String, u32>, String> {
    let mut layers = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.trim().strip_prefix("//! - layer ") else {
            continue;
        };
        let (n, names) = rest
            .split_once(',')
            .ok_or_else(|| format!("no comma after the layer number: {line}"))?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("bad layer number: {line}"))?;
        let (_, names) = names
            .split_once(':')
            .ok_or_else(|| format!("no colon before the modules: {line}"))?;
        for name in names.split(',') {
            let name = name.trim().trim_matches('`');
            if !name.is_empty() && layers.insert(name.to_owned(), n).is_some() {
                return Err(format!("{name} is listed twice"));
            }
        }
    }
    if layers.is_empty() {
        return Err("no `//! - layer N, …: …` lines".into());
    }
    Ok(layers)
}

fn layer_of(module: &str, layers: &BTreeMap<String, u32>) -> Option<u32> {
    if module == "crate" {
        return Some(0);
    }
    let parts: Vec<&str> = module.split("::").collect();
    (1..=parts.len())
        .rev()
        .find_map(|n| layers.get(&parts[..n].join("::")).copied())
}

fn check(graph: &Graph, layers: &BTreeMap<String, u32>) -> Vec<String> {
    let mut problems = Vec::new();
    for (from, tos) in graph {
        let Some(lf) = layer_of(from, layers) else {
            problems.push(format!(
                "{from} is in no layer: list it in shared/src/lib.rs"
            ));
            continue;
        };
        for to in tos {
            match layer_of(to, layers) {
                None => problems.push(format!("{to} is in no layer: list it in shared/src/lib.rs")),
                Some(lt) if lt > lf => {
                    problems.push(format!("{from} (layer {lf}) uses {to} (layer {lt})"))
                }
                Some(_) => {}
            }
            let top = |m: &str| m.split("::").next().unwrap_or("").to_owned();
            if VENDORS.contains(&top(from).as_str()) && top(to) == "jobs" {
                problems.push(format!("{from} uses {to}: a vendor module never uses jobs"));
            }
            if HANDLERS.contains(&from.as_str()) && HANDLERS.contains(&to.as_str()) {
                problems.push(format!(
                    "{from} uses the handler {to}: move what both need to jobs::context, jobs::outcome or lower"
                ));
            }
        }
    }
    problems.extend(circles(graph));
    // A module in no layer is named once, however many modules use it.
    problems.sort();
    problems.dedup();
    problems
}

/// Every strongly connected group of more than one module (Tarjan), as one path round it.
fn circles(graph: &Graph) -> Vec<String> {
    struct T<'g> {
        g: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on: BTreeSet<&'g str>,
        out: Vec<Vec<&'g str>>,
    }
    fn visit<'g>(t: &mut T<'g>, v: &'g str) {
        let i = t.index.len();
        t.index.insert(v, i);
        t.low.insert(v, i);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low[v];
                t.low.insert(v, lv.min(lw));
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low[v];
                t.low.insert(v, lv.min(iw));
            }
        }
        if t.low[v] == t.index[v] {
            let mut group = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                group.push(w);
                if w == v {
                    break;
                }
            }
            if group.len() > 1 {
                t.out.push(group);
            }
        }
    }
    let mut t = T {
        g: graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
        .iter()
        .map(|group| {
            let members: BTreeSet<&str> = group.iter().copied().collect();
            // Walk from the smallest name along edges inside the group until a module repeats.
            let start = *members.iter().next().unwrap_or(&"");
            let mut path = vec![start];
            let mut at = start;
            loop {
                let next = graph[at]
                    .iter()
                    .map(String::as_str)
                    .find(|n| members.contains(n))
                    .unwrap_or(start);
                path.push(next);
                if path[..path.len() - 1].contains(&next) {
                    break;
                }
                at = next;
            }
            format!("circle: {}", path.join(" -> "))
        })
        .collect()
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `jobs/dial.rs` -> `jobs::dial`, `jobs/mod.rs` -> `jobs`, `lib.rs` -> `crate`.
fn module_name(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    if parts.is_empty() {
        "crate".into()
    } else {
        parts.join("::")
    }
}

fn module_graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rs_files(src, &mut files);
    let names: BTreeMap<String, PathBuf> = files
        .iter()
        .map(|f| (module_name(src, f), f.clone()))
        .collect();
    let known: BTreeSet<String> = names.keys().cloned().collect();
    names
        .iter()
        .map(|(name, file)| {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            (name.clone(), uses_of(name, &text, &known))
        })
        .collect()
}

/// The modules `text` (the file of `module`) uses outside comments and `#[cfg(test)]` items.
fn uses_of(module: &str, text: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let code = strip_test_items(&strip_comments_and_strings(text));
    // `super` of `a::b` (file a/b.rs) is `a`; of `a` (a/mod.rs) it is the crate.
    let parent: Vec<&str> = if module == "crate" {
        vec![]
    } else {
        let parts: Vec<&str> = module.split("::").collect();
        parts[..parts.len() - 1].to_vec()
    };
    let mut paths: Vec<Vec<String>> = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let boundary = i == 0
            || !(bytes[i - 1].is_ascii_alphanumeric()
                || bytes[i - 1] == b'_'
                || bytes[i - 1] == b':');
        if boundary && rest.starts_with("use ") {
            let end = rest.find(';').unwrap_or(rest.len());
            let tree = rest[4..end].trim();
            let tree = tree.strip_prefix("pub ").unwrap_or(tree);
            for p in expand(tree) {
                paths.push(p);
            }
            i += end;
            continue;
        }
        if boundary && (rest.starts_with("crate::") || rest.starts_with("super::")) {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            paths.push(
                rest[..end]
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            );
            i += end;
            continue;
        }
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    let mut used = BTreeSet::new();
    for p in paths {
        let own = |rest: &[String]| -> Vec<String> {
            let base = if module == "crate" {
                vec![]
            } else {
                vec![module.to_owned()]
            };
            base.into_iter().chain(rest.iter().cloned()).collect()
        };
        let absolute: Vec<String> = match p.first().map(String::as_str) {
            Some("crate") => p[1..].to_vec(),
            Some("super") => parent
                .iter()
                .map(|s| s.to_string())
                .chain(p[1..].iter().cloned())
                .collect(),
            Some("self") => own(&p[1..]),
            // A path that starts with a child module's name (`use item::JobKind;` in queue/mod.rs).
            Some(first) if known.contains(&own(&[first.to_owned()]).join("::")) => own(&p),
            _ => continue,
        };
        let absolute: Vec<String> = absolute.into_iter().filter(|s| s != "self").collect();
        let target = (1..=absolute.len())
            .rev()
            .map(|n| absolute[..n].join("::"))
            .find(|m| known.contains(m))
            .unwrap_or_else(|| "crate".into());
        if target != module {
            used.insert(target);
        }
    }
    used
}

/// `a::{b, c::{d, e}}` -> [[a, b], [a, c, d], [a, c, e]]; a leading `pub(crate)` is dropped.
fn expand(tree: &str) -> Vec<Vec<String>> {
    let tree = tree.trim();
    let tree = tree
        .strip_prefix("pub(crate) ")
        .or_else(|| tree.strip_prefix("pub(super) "))
        .unwrap_or(tree)
        .trim();
    if let Some(inner) = tree.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        let mut out = Vec::new();
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.extend(expand(&inner[start..i]));
                    start = i + 1;
                }
                _ => {}
            }
        }
        out.extend(expand(&inner[start..]));
        return out;
    }
    if tree.is_empty() {
        return vec![];
    }
    match tree.split_once("::") {
        None => {
            let name = tree.split_whitespace().next().unwrap_or("").to_owned();
            vec![vec![name]]
        }
        Some((head, rest)) if rest.trim().is_empty() => vec![vec![head.trim().to_owned()]],
        Some((head, rest)) => expand(rest)
            .into_iter()
            .map(|mut p| {
                p.insert(0, head.trim().to_owned());
                p
            })
            .collect(),
    }
}

/// Blank out comments and the contents of string and char literals (keeping byte offsets
/// irrelevant: only the code's words matter).
fn strip_comments_and_strings(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |e| e + 2);
        } else if rest.starts_with("r#\"") || rest.starts_with("r\"") {
            let hashes = rest[1..].chars().take_while(|&c| c == '#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 2 + hashes;
            i += rest[body..]
                .find(&close)
                .map_or(rest.len(), |e| body + e + close.len());
            out.push_str("\"\"");
        } else if rest.starts_with('"') {
            let mut j = 1;
            while j < rest.len() {
                match rest.as_bytes()[j] {
                    b'\\' => j += 2,
                    b'"' => break,
                    _ => j += 1,
                }
            }
            i += (j + 1).min(rest.len());
            out.push_str("\"\"");
        } else if rest.starts_with('\'') && char_literal_len(rest).is_some() {
            i += char_literal_len(rest).unwrap_or(1);
            out.push_str("' '");
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `'x'`, `'\n'`, `'\''`, `'\u{1F600}'`: a char literal's length; `None` for a lifetime.
fn char_literal_len(rest: &str) -> Option<usize> {
    let b = rest.as_bytes();
    if b.get(1) == Some(&b'\\') {
        return rest[2..].find('\'').map(|e| e + 3);
    }
    let c = rest[1..].chars().next()?;
    (rest[1 + c.len_utf8()..].starts_with('\'')).then(|| 2 + c.len_utf8())
}

/// Drop each item after `#[cfg(test)]`: up to its matching `}` (a module or fn) or its `;`.
fn strip_test_items(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let brace = after.find('{');
        let semi = after.find(';');
        let end = match (brace, semi) {
            (Some(b), Some(s)) if s < b => s + 1,
            (Some(b), _) => {
                let mut depth = 0usize;
                let mut end = after.len();
                for (i, c) in after[b..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (None, Some(s)) => s + 1,
            (None, None) => after.len(),
        };
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}
