//! The docs cannot drift (issue 25): README.md and docs/*.md are checked against the code and
//! against themselves, so a rename, a new variable or a removed parameter fails `make test`:
//! - every relative link resolves, and every `#anchor` names a heading of its page (GitHub's
//!   slugs: lowercase, spaces → `-`, punctuation dropped, backticks dropped, `-1`, `-2`… for
//!   repeated headings);
//! - the environment variables: the table after `<!-- env: read by sfvapi -->` in
//!   docs/configuration.md lists exactly what `shared/src` and `functions/*/src` read (outside
//!   `#[cfg(test)]` and `#[test]`), `<!-- env: read by libraries -->` what the AWS SDK and
//!   rustls read, and `<!-- env: read by tools -->` in docs/local-development.md exactly what
//!   `tools/*/src` reads beside those; every variable `template.yaml` sets is one the code reads;
//! - every parameter of `template.yaml` is in the table after `<!-- stack parameters -->`, and no
//!   other;
//! - every `make <target>` the docs name (in code) is a target of the Makefile.
//!
//! How a read is recognised: a string literal (or a `const NAME: &str = "NAME"`) passed to
//! `std::env::var`/`var_os`, or to any function, method or closure of these sources that takes a
//! parameter named `var` (`Env::required`, `Env::parse_or`, the `secs` closures, …), or given as
//! the `var` field of a value (`ConfigError::Invalid { var: "X", … }`); the sources are parsed
//! with `syn`, so a test module's variables do not count.
//!
//! Each check is a function over text; the tests at the end give each a small bad input and
//! assert that the offender is named. No services needed: it reads files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};
use syn::visit::Visit;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("shared/ sits in the repository")
        .to_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// README.md and every docs/*.md, keyed by their path from the repository root.
fn docs() -> BTreeMap<PathBuf, String> {
    let root = repo();
    let mut out = BTreeMap::from([(PathBuf::from("README.md"), read(&root.join("README.md")))]);
    for entry in std::fs::read_dir(root.join("docs")).expect("docs/") {
        let path = entry.expect("docs/ entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            let rel = path.strip_prefix(&root).expect("under the root").to_owned();
            out.insert(rel, read(&path));
        }
    }
    out
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn parser(md: &str) -> Parser<'_> {
    Parser::new_ext(md, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH)
}

// ---------------------------------------------------------------------------------------------
// Links and anchors

/// GitHub's anchor for a heading's text (as rendered: backticks and link syntax already gone):
/// lowercase; letters, digits, `-` and `_` kept; each space a `-`; everything else dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every anchor a page has, in order: a repeated heading gets `-1`, `-2`… as on GitHub.
fn anchors(md: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    let mut heading: Option<String> = None;
    for event in parser(md) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some(h) = heading.take() {
                    let base = slug(&h);
                    let n = seen.entry(base.clone()).or_insert(0);
                    out.insert(if *n == 0 {
                        base.clone()
                    } else {
                        format!("{base}-{n}")
                    });
                    *n += 1;
                }
            }
            _ => {}
        }
    }
    out
}

/// The relative links of a page: (line, destination).
fn relative_links(md: &str) -> Vec<(usize, String)> {
    parser(md)
        .into_offset_iter()
        .filter_map(|(event, range)| match event {
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                Some((line_of(md, range.start), dest_url.to_string()))
            }
            _ => None,
        })
        .filter(|(_, dest)| {
            let scheme = dest
                .split_once(':')
                .is_some_and(|(s, _)| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphabetic()));
            !scheme && !dest.starts_with("//")
        })
        .collect()
}

/// `a/b/../c` → `a/c`, without touching the file system. `None` when it leaves the root.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    Some(out)
}

/// Every relative link or anchor in `pages` that does not resolve, one line each. `pages` are
/// the Markdown pages by path from the root; `exists` answers for every other path.
fn broken_links(pages: &BTreeMap<PathBuf, String>, exists: impl Fn(&Path) -> bool) -> Vec<String> {
    let anchors: BTreeMap<&PathBuf, BTreeSet<String>> =
        pages.iter().map(|(p, md)| (p, anchors(md))).collect();
    let mut problems = Vec::new();
    for (page, md) in pages {
        let dir = page.parent().unwrap_or(Path::new(""));
        for (line, dest) in relative_links(md) {
            let (path, fragment) = dest.split_once('#').unwrap_or((&dest, ""));
            let at = format!("{}:{line}: link `{dest}`", page.display());
            let target = if path.is_empty() {
                Some(page.clone())
            } else {
                normalize(&dir.join(path))
            };
            let Some(target) = target else {
                problems.push(format!("{at} points outside the repository"));
                continue;
            };
            let is_page = pages.contains_key(&target);
            if !is_page && !exists(&target) {
                problems.push(format!("{at}: {} does not exist", target.display()));
                continue;
            }
            if fragment.is_empty() {
                continue;
            }
            match anchors.get(&target) {
                Some(have) if have.contains(fragment) => {}
                Some(have) => problems.push(format!(
                    "{at}: {} has no heading with anchor `#{fragment}` (its anchors: {})",
                    target.display(),
                    have.iter().cloned().collect::<Vec<_>>().join(", ")
                )),
                None if target.extension().is_some_and(|e| e == "md") => problems.push(format!(
                    "{at}: {} is not README.md or docs/*.md, so its anchors are not checked; \
                     link to a page of docs/",
                    target.display()
                )),
                None => {}
            }
        }
    }
    problems
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let root = repo();
    let problems = broken_links(&docs(), |p| root.join(p).exists());
    assert!(
        problems.is_empty(),
        "links in README.md or docs/ that do not resolve (fix the link, or the heading it names):\n{}",
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Environment variables

fn is_var_name(s: &str) -> bool {
    s.len() >= 2
        && s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The names in backticks of the first column of the table right after `marker` (an HTML
/// comment line), each with its line. Errors when the marker or its table is missing.
fn marked_table(
    md: &str,
    marker: &str,
    is_name: impl Fn(&str) -> bool,
) -> Result<BTreeMap<String, usize>, String> {
    let lines: Vec<&str> = md.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == marker)
        .ok_or_else(|| format!("no `{marker}` line"))?;
    let mut out = BTreeMap::new();
    for (i, line) in lines.iter().enumerate().skip(start + 1) {
        let Some(row) = line.trim().strip_prefix('|') else {
            break;
        };
        let first = row.split('|').next().unwrap_or("");
        if first
            .trim()
            .chars()
            .all(|c| c == '-' || c == ':' || c == ' ')
        {
            continue; // the separator row
        }
        for (j, part) in first.split('`').enumerate() {
            if j % 2 == 1 && is_name(part) {
                out.insert(part.to_owned(), i + 1);
            }
        }
    }
    if out.is_empty() {
        return Err(format!(
            "no table (or no `NAME` in its first column) after `{marker}`"
        ));
    }
    Ok(out)
}

/// What a set of Rust sources reads from the environment: variable → first file reading it.
#[derive(Default)]
struct Reads {
    /// Functions and methods with a parameter named `var` or that hand a parameter to
    /// `std::env::var`, plus `std::env`'s own.
    readers: BTreeSet<String>,
    /// Closures with a parameter named `var`, by file (a closure's name is local).
    closures: BTreeMap<String, BTreeSet<String>>,
    /// `const NAME: &str = "VALUE"` with VALUE a variable's name.
    consts: BTreeMap<String, String>,
    vars: BTreeMap<String, String>,
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        let path = a.path();
        let last = path.segments.last().map(|s| s.ident.to_string());
        if path.is_ident("cfg") {
            return a
                .parse_args::<syn::Ident>()
                .is_ok_and(|ident| ident == "test");
        }
        last.as_deref() == Some("test")
    })
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

fn has_var_param<'a>(mut pats: impl Iterator<Item = &'a syn::Pat>) -> bool {
    pats.any(|p| match p {
        syn::Pat::Type(t) => matches!(&*t.pat, syn::Pat::Ident(i) if i.ident == "var"),
        syn::Pat::Ident(i) => i.ident == "var",
        _ => false,
    })
}

/// First pass: who reads (`readers`, `closures`, `consts`).
struct FindReaders<'r> {
    reads: &'r mut Reads,
    file: String,
}

/// Whether `body` calls `std::env::var`/`var_os` with one of `params`.
fn passes_to_env(params: &BTreeSet<String>, body: &syn::Block) -> bool {
    struct Find<'p>(&'p BTreeSet<String>, bool);
    impl<'ast> Visit<'ast> for Find<'_> {
        fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
            if let syn::Expr::Path(f) = &*call.func {
                let std_env = f.path.segments.iter().any(|s| s.ident == "env")
                    && f.path
                        .segments
                        .last()
                        .is_some_and(|s| s.ident == "var" || s.ident == "var_os");
                let of_param = call.args.iter().any(|a| match a {
                    syn::Expr::Path(p) => p
                        .path
                        .get_ident()
                        .is_some_and(|i| self.0.contains(&i.to_string())),
                    _ => false,
                });
                self.1 |= std_env && of_param;
            }
            syn::visit::visit_expr_call(self, call);
        }
    }
    let mut find = Find(params, false);
    find.visit_block(body);
    find.1
}

fn params(sig: &syn::Signature) -> BTreeSet<String> {
    sig.inputs
        .iter()
        .filter_map(|a| match a {
            syn::FnArg::Typed(t) => match &*t.pat {
                syn::Pat::Ident(i) => Some(i.ident.to_string()),
                _ => None,
            },
            syn::FnArg::Receiver(_) => None,
        })
        .collect()
}

impl FindReaders<'_> {
    fn function(&mut self, sig: &syn::Signature, body: &syn::Block) {
        if params(sig).contains("var") || passes_to_env(&params(sig), body) {
            self.reads.readers.insert(sig.ident.to_string());
        }
    }
}

impl<'ast> Visit<'ast> for FindReaders<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if !is_test_only(item_attrs(item)) {
            syn::visit::visit_item(self, item);
        }
    }
    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.function(&f.sig, &f.block);
        syn::visit::visit_item_fn(self, f);
    }
    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        self.function(&f.sig, &f.block);
        syn::visit::visit_impl_item_fn(self, f);
    }
    fn visit_local(&mut self, local: &'ast syn::Local) {
        if let (syn::Pat::Ident(name), Some(init)) = (&local.pat, &local.init) {
            if let syn::Expr::Closure(c) = &*init.expr {
                if has_var_param(c.inputs.iter()) {
                    let file = self.reads.closures.entry(self.file.clone()).or_default();
                    file.insert(name.ident.to_string());
                }
            }
        }
        syn::visit::visit_local(self, local);
    }
    fn visit_item_const(&mut self, c: &'ast syn::ItemConst) {
        if let syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) = &*c.expr
        {
            if is_var_name(&s.value()) && c.ident == s.value() {
                self.reads.consts.insert(c.ident.to_string(), s.value());
            }
        }
    }
}

/// Second pass: what they read.
struct FindReads<'r> {
    reads: &'r mut Reads,
    file: String,
}

impl FindReads<'_> {
    fn is_reader(&self, name: &str) -> bool {
        self.reads.readers.contains(name)
            || self
                .reads
                .closures
                .get(&self.file)
                .is_some_and(|c| c.contains(name))
    }
    fn arg(&mut self, e: &syn::Expr) {
        let name = match e {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            syn::Expr::Path(p) => p
                .path
                .segments
                .last()
                .and_then(|s| self.reads.consts.get(&s.ident.to_string()).cloned()),
            syn::Expr::Reference(r) => return self.arg(&r.expr),
            _ => None,
        };
        if let Some(name) = name.filter(|n| is_var_name(n)) {
            self.reads
                .vars
                .entry(name)
                .or_insert_with(|| self.file.clone());
        }
    }
}

impl<'ast> Visit<'ast> for FindReads<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if !is_test_only(item_attrs(item)) {
            syn::visit::visit_item(self, item);
        }
    }
    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !is_test_only(&f.attrs) {
            syn::visit::visit_impl_item_fn(self, f);
        }
    }
    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        if let syn::Expr::Path(p) = &*call.func {
            let name = p.path.segments.last().map(|s| s.ident.to_string());
            if name.is_some_and(|n| self.is_reader(&n)) {
                call.args.iter().for_each(|a| self.arg(a));
            }
        }
        syn::visit::visit_expr_call(self, call);
    }
    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        if self.is_reader(&call.method.to_string()) {
            call.args.iter().for_each(|a| self.arg(a));
        }
        syn::visit::visit_expr_method_call(self, call);
    }
    fn visit_field_value(&mut self, f: &'ast syn::FieldValue) {
        if matches!(&f.member, syn::Member::Named(n) if n == "var") {
            self.arg(&f.expr);
        }
        syn::visit::visit_field_value(self, f);
    }
}

/// The variables `sources` (path → Rust text) read outside tests, each with the first file.
fn env_reads(sources: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, String> {
    let mut files = Vec::new();
    for (path, text) in sources {
        files.push((
            path,
            syn::parse_file(text).map_err(|e| format!("{path}: not Rust syn can parse: {e}"))?,
        ));
    }
    let mut reads = Reads {
        readers: ["var", "var_os"].map(String::from).into(),
        ..Reads::default()
    };
    for (path, file) in &files {
        FindReaders {
            reads: &mut reads,
            file: path.to_string(),
        }
        .visit_file(file);
    }
    for (path, file) in &files {
        FindReads {
            reads: &mut reads,
            file: path.to_string(),
        }
        .visit_file(file);
    }
    Ok(reads.vars)
}

fn rust_sources(dirs: &[PathBuf]) -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                out.insert(rel, read(&path));
            }
        }
    }
    let root = repo();
    let mut out = BTreeMap::new();
    for d in dirs {
        walk(d, &root, &mut out);
    }
    out
}

/// `<dir>/*/src` for each of `functions` and `tools`.
fn crate_srcs(parent: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(repo().join(parent))
        .unwrap_or_else(|e| panic!("{parent}/: {e}"))
        .flatten()
        .map(|e| e.path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

/// The variables every function's `Environment: Variables:` in the template sets.
fn template_env(template: &serde_norway::Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut add = |env: &serde_norway::Value| {
        if let Some(m) = env["Variables"].as_mapping() {
            out.extend(m.keys().filter_map(|k| k.as_str().map(str::to_owned)));
        }
    };
    add(&template["Globals"]["Function"]["Environment"]);
    if let Some(resources) = template["Resources"].as_mapping() {
        for r in resources.values() {
            add(&r["Properties"]["Environment"]);
        }
    }
    out
}

/// Where the code and the reference disagree, one line each.
struct EnvDocs<'a> {
    /// The code the reference is about: variable → file.
    read: &'a BTreeMap<String, String>,
    /// The checked table: variable → line.
    listed: &'a BTreeMap<String, usize>,
    /// Other tables a variable the code reads may be in (not checked the other way).
    also: &'a [&'a BTreeMap<String, usize>],
    /// Where the table is, for the messages.
    table: &'a str,
}

fn env_problems(d: &EnvDocs) -> Vec<String> {
    let mut problems = Vec::new();
    for (var, file) in d.read {
        if !d.listed.contains_key(var) && !d.also.iter().any(|t| t.contains_key(var)) {
            problems.push(format!(
                "{file} reads {var}, which {} does not list: add a row with its meaning and default",
                d.table
            ));
        }
    }
    for (var, line) in d.listed {
        if !d.read.contains_key(var) {
            problems.push(format!(
                "{}:{line} lists {var}, which no code reads: remove the row (or fix its name)",
                d.table
            ));
        }
    }
    problems
}

fn template() -> serde_norway::Value {
    serde_norway::from_str(&read(&repo().join("template.yaml"))).expect("template.yaml is YAML")
}

const CONFIGURATION: &str = "docs/configuration.md";
const LOCAL_DEVELOPMENT: &str = "docs/local-development.md";

#[test]
fn the_configuration_reference_lists_exactly_the_variables_the_code_reads() {
    let root = repo();
    let config = read(&root.join(CONFIGURATION));
    let ours = marked_table(&config, "<!-- env: read by sfvapi -->", is_var_name)
        .unwrap_or_else(|e| panic!("{CONFIGURATION}: {e}"));
    let libraries = marked_table(&config, "<!-- env: read by libraries -->", is_var_name)
        .unwrap_or_else(|e| panic!("{CONFIGURATION}: {e}"));
    let local = read(&root.join(LOCAL_DEVELOPMENT));
    let tools_table = marked_table(&local, "<!-- env: read by tools -->", is_var_name)
        .unwrap_or_else(|e| panic!("{LOCAL_DEVELOPMENT}: {e}"));

    let mut dirs = vec![root.join("shared/src")];
    dirs.extend(crate_srcs("functions"));
    let code = env_reads(&rust_sources(&dirs)).unwrap_or_else(|e| panic!("{e}"));
    let tools = env_reads(&rust_sources(&crate_srcs("tools"))).unwrap_or_else(|e| panic!("{e}"));
    // The tools also read the functions' variables (sfvapi-admin); only the rest is theirs.
    let tools_own: BTreeMap<String, String> = tools
        .iter()
        .filter(|(v, _)| !ours.contains_key(*v))
        .map(|(v, f)| (v.clone(), f.clone()))
        .collect();

    let mut problems = env_problems(&EnvDocs {
        read: &code,
        listed: &ours,
        also: &[&libraries],
        table: CONFIGURATION,
    });
    problems.extend(env_problems(&EnvDocs {
        read: &tools_own,
        listed: &tools_table,
        also: &[&libraries],
        table: LOCAL_DEVELOPMENT,
    }));
    for var in template_env(&template()) {
        if !code.contains_key(&var) {
            problems.push(format!(
                "template.yaml sets {var} on a function, but no code in shared/src or \
                 functions/*/src reads it"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the configuration reference and the code disagree:\n{}",
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Stack parameters

fn is_parameter_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_uppercase()) && s.chars().all(|c| c.is_ascii_alphanumeric())
}

fn parameter_problems(template: &serde_norway::Value, md: &str) -> Vec<String> {
    let listed = match marked_table(md, "<!-- stack parameters -->", is_parameter_name) {
        Ok(t) => t,
        Err(e) => return vec![format!("{CONFIGURATION}: {e}")],
    };
    let params: BTreeSet<String> = template["Parameters"]
        .as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut problems = Vec::new();
    for p in &params {
        if !listed.contains_key(p) {
            problems.push(format!(
                "template.yaml has the parameter {p}, which {CONFIGURATION} does not document: \
                 add a row"
            ));
        }
    }
    for (p, line) in &listed {
        if !params.contains(p) {
            problems.push(format!(
                "{CONFIGURATION}:{line} documents the parameter {p}, which template.yaml does \
                 not have: remove the row (or fix its name)"
            ));
        }
    }
    problems
}

#[test]
fn every_stack_parameter_is_documented() {
    let problems = parameter_problems(&template(), &read(&repo().join(CONFIGURATION)));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// make targets

fn makefile_targets(makefile: &str) -> BTreeSet<String> {
    makefile
        .lines()
        .filter(|l| !l.starts_with(['\t', ' ', '#', '.']))
        .filter_map(|l| {
            let (head, rest) = l.split_once(':')?;
            (!rest.starts_with('=') && !head.contains(['=', '$', '%'])).then_some(head)
        })
        .flat_map(|head| head.split_whitespace().map(str::to_owned))
        .collect()
}

/// `make <target>` in a page's code (inline or blocks): (line, target).
fn make_mentions(md: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_block = false;
    for (event, range) in parser(md).into_offset_iter() {
        let code = match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                // A block of YAML or JSON has no commands.
                in_block = match kind {
                    CodeBlockKind::Fenced(lang) => {
                        matches!(&*lang, "" | "sh" | "bash" | "shell" | "console" | "text")
                    }
                    CodeBlockKind::Indented => true,
                };
                continue;
            }
            Event::End(TagEnd::CodeBlock) => {
                in_block = false;
                continue;
            }
            Event::Code(t) => t,
            Event::Text(t) if in_block => t,
            _ => continue,
        };
        for (n, code_line) in code.lines().enumerate() {
            let words: Vec<&str> = code_line.split_whitespace().collect();
            for (i, w) in words.iter().enumerate() {
                let target = words.get(i + 1).filter(|t| {
                    t.starts_with(|c: char| c.is_ascii_lowercase()) && !t.contains('=')
                });
                if let (true, Some(target)) = (*w == "make", target) {
                    out.push((line_of(md, range.start) + n, (*target).to_owned()));
                }
            }
        }
    }
    out
}

fn make_problems(pages: &BTreeMap<PathBuf, String>, makefile: &str) -> Vec<String> {
    let targets = makefile_targets(makefile);
    let mut problems = Vec::new();
    for (page, md) in pages {
        for (line, target) in make_mentions(md) {
            if !targets.contains(&target) {
                problems.push(format!(
                    "{}:{line}: `make {target}`, but the Makefile has no target {target}",
                    page.display()
                ));
            }
        }
    }
    problems
}

#[test]
fn every_make_target_the_docs_name_exists() {
    let pages = docs();
    assert!(
        pages.values().any(|md| !make_mentions(md).is_empty()),
        "the docs name no make target at all: the mention parser is broken"
    );
    let problems = make_problems(&pages, &read(&repo().join("Makefile")));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Each check can fail: small bad inputs, and the offender is named.

fn pages(list: &[(&str, &str)]) -> BTreeMap<PathBuf, String> {
    list.iter()
        .map(|(p, md)| (PathBuf::from(p), (*md).to_owned()))
        .collect()
}

#[test]
fn slugs_follow_github() {
    assert_eq!(
        slug("Check a deployment: sfvapi-admin doctor"),
        "check-a-deployment-sfvapi-admin-doctor"
    );
    assert_eq!(
        slug("Connect Salesforce's REST API (OAuth)"),
        "connect-salesforces-rest-api-oauth"
    );
    assert_eq!(slug("Hand-off and records"), "hand-off-and-records");
    assert_eq!(slug("snake_case stays"), "snake_case-stays");
    let a = anchors("# Logs\n\n## `make watch` and `make invoke`\n\n## Logs\n\n## Logs\n");
    let want: BTreeSet<String> = ["logs", "make-watch-and-make-invoke", "logs-1", "logs-2"]
        .map(String::from)
        .into();
    assert_eq!(a, want);
    // A heading in a code block is not a heading.
    assert!(anchors("```sh\n# fill the secrets\n```\n").is_empty());
}

#[test]
fn a_broken_link_or_anchor_is_named() {
    let p = pages(&[
        (
            "README.md",
            "# sfvapi\n\nSee [deploy](docs/deploy.md#check-a-deployment), [gone](docs/gone.md),\n\
             [self](#sfvapi), [code](shared/src/lib.rs), [web](https://example.com/x#y).\n",
        ),
        (
            "docs/deploy.md",
            "# Deploy\n\n## Check a deployment: `sfvapi-admin doctor`\n\n\
             [up](../README.md#nope) [ok](#check-a-deployment-sfvapi-admin-doctor) [out](../../x.md)\n\
             `[not a link](#in-code)`\n",
        ),
    ]);
    let problems = broken_links(&p, |path| path == Path::new("shared/src/lib.rs"));
    let text = problems.join("\n");
    assert_eq!(problems.len(), 4, "{text}");
    assert!(
        text.contains("README.md:3: link `docs/deploy.md#check-a-deployment`: docs/deploy.md has no heading with anchor `#check-a-deployment`"),
        "{text}"
    );
    assert!(
        text.contains("README.md:3: link `docs/gone.md`: docs/gone.md does not exist"),
        "{text}"
    );
    assert!(
        text.contains("docs/deploy.md:5: link `../README.md#nope`"),
        "{text}"
    );
    assert!(
        text.contains("docs/deploy.md:5: link `../../x.md` points outside"),
        "{text}"
    );
}

#[test]
fn the_env_scan_finds_every_way_of_reading_and_skips_tests() {
    let src = r#"
        pub const ROUTING_FILE: &str = "ROUTING_FILE";
        const NOT_A_VAR: &str = "something else";
        pub struct Env;
        impl Env {
            pub fn optional(&self, var: &'static str) -> Option<String> { std::env::var(var).ok() }
        }
        fn load(env: &Env) {
            let secs = |p: &mut u8, var: &'static str, d: u64| d;
            let _ = env.optional("FROM_METHOD");
            let _ = env.optional(ROUTING_FILE);
            let _ = secs(&mut 0, "FROM_CLOSURE", 1);
            let _ = std::env::var_os("FROM_STD");
            let _ = ConfigError::Invalid { var: "FROM_FIELD", reason: String::new() };
            let _ = other("NOT_READ_HERE");
            let _ = env.optional("lowercase is no variable");
        }
        #[cfg(test)]
        mod tests {
            fn t(env: &super::Env) { let _ = env.optional("ONLY_IN_TESTS"); }
        }
        #[test]
        fn also_a_test() { let _ = std::env::var("ONLY_IN_A_TEST_FN"); }
        fn env_usize(name: &str, d: usize) -> usize { std::env::var(name).map_or(d, |v| v.len()) }
        fn bench() { let _ = env_usize("FROM_HELPER", 3); }
    "#;
    // `secs` is a closure of x.rs only: y.rs's own `secs` reads nothing.
    let other = r#"fn secs(w: u8, field: &str) {} fn f() { secs(1, "NOT_AN_ENV_VAR"); }"#;
    let reads = env_reads(&BTreeMap::from([
        ("shared/src/x.rs".to_owned(), src.to_owned()),
        ("shared/src/y.rs".to_owned(), other.to_owned()),
    ]))
    .expect("parses");
    let got: Vec<&str> = reads.keys().map(String::as_str).collect();
    assert_eq!(
        got,
        [
            "FROM_CLOSURE",
            "FROM_FIELD",
            "FROM_HELPER",
            "FROM_METHOD",
            "FROM_STD",
            "ROUTING_FILE"
        ]
    );
    assert!(env_reads(&BTreeMap::from([("bad.rs".to_owned(), "fn (".to_owned())])).is_err());
}

#[test]
fn a_variable_missing_from_the_reference_or_no_longer_read_is_named() {
    let md = "# Configuration\n\n<!-- env: read by sfvapi -->\n\
              | variable | meaning |\n|---|---|\n\
              | `TABLE_NAME` | the table |\n| `OLD_VAR`, `ALSO_READ` | gone |\n";
    let listed = marked_table(md, "<!-- env: read by sfvapi -->", is_var_name).expect("table");
    assert_eq!(
        listed.keys().map(String::as_str).collect::<Vec<_>>(),
        ["ALSO_READ", "OLD_VAR", "TABLE_NAME"]
    );
    let read: BTreeMap<String, String> = [
        ("TABLE_NAME", "shared/src/config.rs"),
        ("ALSO_READ", "shared/src/a.rs"),
        ("NEW_VAR", "shared/src/jobs/config.rs"),
        ("AWS_REGION", "shared/src/config.rs"),
    ]
    .map(|(v, f)| (v.to_owned(), f.to_owned()))
    .into();
    let libraries = BTreeMap::from([("AWS_REGION".to_owned(), 1)]);
    let problems = env_problems(&EnvDocs {
        read: &read,
        listed: &listed,
        also: &[&libraries],
        table: CONFIGURATION,
    });
    assert_eq!(
        problems,
        [
            "shared/src/jobs/config.rs reads NEW_VAR, which docs/configuration.md does not list: \
             add a row with its meaning and default",
            "docs/configuration.md:7 lists OLD_VAR, which no code reads: remove the row (or fix its name)",
        ]
    );
    assert!(marked_table("# no marker\n", "<!-- env: read by sfvapi -->", is_var_name).is_err());
    assert!(marked_table(
        "<!-- env: read by sfvapi -->\n\ntext\n",
        "<!-- env: read by sfvapi -->",
        is_var_name
    )
    .is_err());
}

#[test]
fn the_template_env_is_read_from_globals_and_every_function() {
    let t: serde_norway::Value = serde_norway::from_str(
        "Globals:\n  Function:\n    Environment:\n      Variables:\n        TABLE_NAME: !Ref Table\n\
         Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      Environment:\n\
         \x20       Variables:\n          SF_TYPO: x\n",
    )
    .expect("yaml");
    assert_eq!(
        template_env(&t).into_iter().collect::<Vec<_>>(),
        ["SF_TYPO", "TABLE_NAME"]
    );
}

#[test]
fn a_stack_parameter_missing_or_gone_is_named() {
    let t: serde_norway::Value = serde_norway::from_str(
        "Parameters:\n  CallHours:\n    Type: String\n  NewParam:\n    Type: Number\n",
    )
    .expect("yaml");
    let md = "<!-- stack parameters -->\n| parameter | meaning |\n|---|---|\n\
              | `CallHours` | hours |\n| `OldParam` | gone |\n";
    assert_eq!(
        parameter_problems(&t, md),
        [
            "template.yaml has the parameter NewParam, which docs/configuration.md does not \
             document: add a row",
            "docs/configuration.md:5 documents the parameter OldParam, which template.yaml does \
             not have: remove the row (or fix its name)",
        ]
    );
}

#[test]
fn a_make_target_that_does_not_exist_is_named() {
    let makefile = "VENV := .tools/venv\n.PHONY: demo test\n\ndemo: tools\n\t@echo demo\n\
                    test lint: tools\n\techo\n$(VENV)/.installed:\n\ttrue\n";
    let targets = makefile_targets(makefile);
    assert_eq!(
        targets.iter().map(String::as_str).collect::<Vec<_>>(),
        ["demo", "lint", "test"]
    );
    let p = pages(&[(
        "docs/x.md",
        "Run `make demo SCENARIO=x` and `make demos`.\n\n```sh\nmake test\nmake nope  # gone\n```\n\n\
         ```yaml\nkey: make nothing\n```\n\nTo make sure, nothing here is code.\n",
    )]);
    assert_eq!(
        make_problems(&p, makefile),
        [
            "docs/x.md:1: `make demos`, but the Makefile has no target demos",
            "docs/x.md:5: `make nope`, but the Makefile has no target nope",
        ]
    );
}
