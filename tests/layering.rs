//! The layering rule of `src/lib.rs`, checked: no cycle among the top-level modules of
//! `src/`. A module's dependencies are read from its source as text, the way
//! `shared/tools/modcycles.py` reads them: every `crate::x` path, including each name of a
//! `use crate::{a, b::c}` group, is an edge from the module the file belongs to (`src/x.rs`
//! or anything under `src/x/`) to the top-level module `x`. Test code is left out, as a
//! test may use any layer: files named `tests.rs` or `*_tests.rs` or under a `tests/`
//! folder, and `#[cfg(test)] mod tests { ... }` blocks. So are comments and the contents of
//! string and character literals. `lib.rs` and `main.rs` sit on top and are not read.
//!
//! A failure names one cycle and, for each edge in it, the `file:line`s that make it.
//!
//! Not seen: a path that reaches another module without `crate::` (`super::super::x`), and
//! paths a macro builds. The crate writes `crate::` paths across modules.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test that cannot read its sources fails loudly"
)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

/// Where a module names another: a file (relative to `src/`) and a line (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Site {
    file: String,
    line: usize,
}

/// Top-level module -> the modules it names -> where it names them.
type Graph = BTreeMap<String, BTreeMap<String, Vec<Site>>>;

#[test]
fn no_cycles_between_top_level_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    read_tree(&src, &src, &mut files);
    let (modules, g) = graph(&files);
    // A walk that found nothing would pass; the crate has two dozen modules.
    assert!(modules.len() >= 15, "only {modules:?} found under {src:?}");
    let edges: usize = g.values().map(BTreeMap::len).sum();
    assert!(edges >= 30, "only {edges} edges found: {g:?}");
    let found = cycles(&g);
    assert!(
        found.is_empty(),
        "the top-level modules of src/ must not depend on each other in a cycle (see the \
         layers in src/lib.rs); move the type or function one of these edges needs down to a \
         lower module, or pass it in:\n\n{}",
        found
            .iter()
            .map(|c| describe(&g, c))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The stronger form of the rule: the layers `src/lib.rs` lists (`# Layers`, a numbered
/// list, bottom-up) name every top-level module, and a module names only modules on the
/// lines below its own or before it on its line. A new module fails here until it is given
/// a place, and an edge that goes up fails even where it closes no cycle, so the list in
/// `lib.rs` stays the true map.
#[test]
fn the_layers_listed_in_lib_rs_hold() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    read_tree(&root, &root, &mut files);
    let (modules, g) = graph(&files);
    let lib = std::fs::read_to_string(root.join("lib.rs")).unwrap();
    let place = layers(&lib);
    assert!(
        place.len() >= 15,
        "no `# Layers` list found in src/lib.rs: {place:?}"
    );
    let unplaced: Vec<_> = modules.iter().filter(|m| !place.contains_key(*m)).collect();
    assert!(
        unplaced.is_empty(),
        "these modules have no place in the layers of src/lib.rs: {unplaced:?}"
    );
    let mut wrong = Vec::new();
    for (from, tos) in &g {
        for (to, sites) in tos {
            if place[to] >= place[from] {
                let at: Vec<_> = sites
                    .iter()
                    .map(|s| format!("src/{}:{}", s.file, s.line))
                    .collect();
                wrong.push(format!("{from} -> {to} ({})", at.join(", ")));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "these edges go up the layers listed in src/lib.rs (move what they need down, or \
         change the list if the map itself changed):\n{}",
        wrong.join("\n")
    );
}

/// The modules of the `# Layers` list of a crate root's `//!` header: each numbered item
/// (`1. ...`) names its modules in backticks on its first line, before any `:` or `(` of
/// its prose; the place of a module is (its item, its position in the item).
fn layers(lib: &str) -> BTreeMap<String, (usize, usize)> {
    let mut out = BTreeMap::new();
    let mut in_list = false;
    for line in lib.lines().map_while(|l| l.strip_prefix("//!")) {
        let doc = line.trim();
        if let Some(heading) = doc.strip_prefix('#') {
            in_list = heading.trim() == "Layers";
            continue;
        }
        let Some((n, text)) = doc.split_once(". ") else {
            continue;
        };
        let Ok(item) = n.parse::<usize>() else {
            continue;
        };
        if !in_list {
            continue;
        }
        let names = text.split([':', '(']).next().unwrap_or("");
        for (at, name) in names.split('`').skip(1).step_by(2).enumerate() {
            out.entry(name.to_owned()).or_insert((item, at));
        }
    }
    out
}

#[test]
fn the_check_finds_a_cycle_and_reads_past_comments_strings_and_tests() {
    let files: Vec<(String, String)> = [
        ("lib.rs", "pub mod a;\nuse crate::a::g;\n"),
        (
            "a.rs",
            "use crate::b::Thing;\nuse crate::d;\npub fn g() -> u8 { 1 }\n",
        ),
        ("b/mod.rs", "mod inner;\npub struct Thing;\n"),
        (
            "b/inner.rs",
            "use crate::{\n    c::{self, X},\n    schema,\n};\n",
        ),
        ("c.rs", "pub fn f() -> u8 {\n    crate::a::g()\n}\n"),
        (
            "d.rs",
            concat!(
                "// crate::a is only named in a comment\n",
                "/* crate::a /* nested */ crate::a */\n",
                "const S: &str = \"crate::a // \\\" crate::a\";\n",
                "const R: &str = r#\"crate::a\"#;\n",
                "fn brace() -> char { '{' }\n",
                "#[cfg(test)]\n",
                "mod tests {\n",
                "    use crate::a;\n",
                "    const C: char = '}';\n",
                "}\n",
                "pub fn after<'a>(s: &'a str) -> &'a str { crate::schema::x(s) }\n",
            ),
        ),
        ("d/tests.rs", "use crate::a;\n"),
        ("d/parse_tests.rs", "use crate::a;\n"),
        ("d/tests/fixtures.rs", "use crate::a;\n"),
        ("schema.rs", "pub fn x(s: &str) -> &str { s }\n"),
    ]
    .iter()
    .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
    .collect();
    let (modules, g) = graph(&files);
    assert_eq!(
        modules.iter().map(String::as_str).collect::<Vec<_>>(),
        ["a", "b", "c", "d", "schema"]
    );
    let at = |from: &str, to: &str| -> Vec<String> {
        g.get(from)
            .and_then(|m| m.get(to))
            .map(|sites| {
                sites
                    .iter()
                    .map(|s| format!("{}:{}", s.file, s.line))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(at("a", "b"), ["a.rs:1"]);
    assert_eq!(at("b", "c"), ["b/inner.rs:2"]);
    assert_eq!(at("b", "schema"), ["b/inner.rs:3"]);
    assert_eq!(at("c", "a"), ["c.rs:2"]);
    // Read after a test block; nothing from comments, literals, test files or the test block.
    assert_eq!(at("d", "schema"), ["d.rs:11"]);
    assert!(at("d", "a").is_empty(), "{g:?}");

    let found = cycles(&g);
    assert_eq!(
        found,
        [vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]]
    );
    let text = describe(&g, &found[0]);
    assert!(text.starts_with("cycle: a -> b -> c -> a\n"), "{text}");
    assert!(text.contains("  b -> c: src/b/inner.rs:2\n"), "{text}");
    assert!(text.contains("  c -> a: src/c.rs:2\n"), "{text}");

    // Without the edge that closes it, there is no cycle.
    let mut g = g;
    g.entry("c".to_owned()).or_default().remove("a");
    assert!(cycles(&g).is_empty());
}

// === reading the sources ===

/// Every `.rs` file under `dir`, as (path relative to `root` with `/`, text).
fn read_tree(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {dir:?}: {e}"))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_tree(root, &path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            let rel = path.strip_prefix(root).unwrap();
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {path:?}: {e}"));
            out.push((rel, text));
        }
    }
}

/// The top-level module a file belongs to, or `None` for the crate roots and test files.
fn module_of(rel: &str) -> Option<&str> {
    let parts: Vec<&str> = rel.split('/').collect();
    let name = *parts.last()?;
    if name == "tests.rs" || name.ends_with("_tests.rs") || parts.contains(&"tests") {
        return None;
    }
    let top = parts[0].strip_suffix(".rs").unwrap_or(parts[0]);
    (!matches!(top, "lib" | "main")).then_some(top)
}

/// The top-level modules, and the edges between them, of a set of files.
fn graph(files: &[(String, String)]) -> (BTreeSet<String>, Graph) {
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|(rel, _)| module_of(rel))
        .map(str::to_owned)
        .collect();
    let mut g = Graph::new();
    for (rel, text) in files {
        let Some(from) = module_of(rel) else {
            continue;
        };
        let code = without_test_blocks(&code_only(text));
        for (to, line) in crate_paths(&code) {
            if to != from && modules.contains(&to) {
                g.entry(from.to_owned())
                    .or_default()
                    .entry(to)
                    .or_default()
                    .push(Site {
                        file: rel.clone(),
                        line,
                    });
            }
        }
    }
    (modules, g)
}

/// `text` with comments and the contents of string and character literals blanked out
/// (newlines kept, so lines keep their numbers).
fn code_only(text: &str) -> String {
    let s: Vec<char> = text.chars().collect();
    let mut out = s.clone();
    let blank = |out: &mut Vec<char>, from: usize, to: usize| {
        for c in &mut out[from..to.min(s.len())] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < s.len() {
        let next = s.get(i + 1).copied();
        match s[i] {
            '/' if next == Some('/') => {
                let end = s[i..]
                    .iter()
                    .position(|&c| c == '\n')
                    .map_or(s.len(), |n| i + n);
                blank(&mut out, i, end);
                i = end;
            }
            '/' if next == Some('*') => {
                let (mut depth, mut j) = (1, i + 2);
                while j < s.len() && depth > 0 {
                    if s[j] == '/' && s.get(j + 1) == Some(&'*') {
                        depth += 1;
                        j += 2;
                    } else if s[j] == '*' && s.get(j + 1) == Some(&'/') {
                        depth -= 1;
                        j += 2;
                    } else {
                        j += 1;
                    }
                }
                blank(&mut out, i, j);
                i = j;
            }
            // A raw string: r"..", r#".."#, br#".."#, cr".." (not an identifier ending in r).
            'r' if (i == 0 || !ident(s[i - 1]) || matches!(s[i - 1], 'b' | 'c'))
                && matches!(next, Some('"' | '#')) =>
            {
                let hashes = s[i + 1..].iter().take_while(|&&c| c == '#').count();
                if s.get(i + 1 + hashes) != Some(&'"') {
                    i += 1;
                    continue;
                }
                let start = i + 2 + hashes;
                let mut j = start;
                while j < s.len() {
                    if s[j] == '"'
                        && s[j + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|&&c| c == '#')
                            .count()
                            == hashes
                    {
                        break;
                    }
                    j += 1;
                }
                blank(&mut out, start, j);
                i = j + 1 + hashes;
            }
            '"' => {
                let mut j = i + 1;
                while j < s.len() && s[j] != '"' {
                    j += if s[j] == '\\' { 2 } else { 1 };
                }
                blank(&mut out, i + 1, j);
                i = j + 1;
            }
            // A character literal ('x', '\n', '\u{7b}'); a lifetime ('a) is left alone.
            '\'' => {
                if next == Some('\\') {
                    let end = s[i + 2..]
                        .iter()
                        .position(|&c| c == '\'')
                        .map_or(s.len(), |n| i + 2 + n);
                    blank(&mut out, i + 1, end);
                    i = end + 1;
                } else if s.get(i + 2) == Some(&'\'') {
                    blank(&mut out, i + 1, i + 2);
                    i += 3;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out.into_iter().collect()
}

/// `code` (comments and literals blanked) with every `#[cfg(test)] mod tests { ... }` block
/// blanked.
fn without_test_blocks(code: &str) -> String {
    let mut s: Vec<char> = code.chars().collect();
    let len = s.len();
    let attr: Vec<char> = "#[cfg(test)]".chars().collect();
    let mut i = 0;
    while i + attr.len() <= s.len() {
        if s[i..i + attr.len()] != attr[..] {
            i += 1;
            continue;
        }
        let Some(open) = test_block_open(&s, i + attr.len()) else {
            i += attr.len();
            continue;
        };
        let (mut depth, mut j) = (0usize, open);
        while j < s.len() {
            match s[j] {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        for c in &mut s[i..(j + 1).min(len)] {
            if *c != '\n' {
                *c = ' ';
            }
        }
        i = j + 1;
    }
    s.into_iter().collect()
}

/// Where the `{` of `mod tests {` is, when that (with any whitespace) is what `s` holds from
/// `at` on.
fn test_block_open(s: &[char], at: usize) -> Option<usize> {
    let mut i = at;
    for word in ["mod", "tests"] {
        let ws = s[i..].iter().take_while(|c| c.is_whitespace()).count();
        // At least one space before `tests`, and nothing glued to `tests` but `{`.
        if word == "tests" && ws == 0 {
            return None;
        }
        i += ws;
        let w: Vec<char> = word.chars().collect();
        if s.get(i..i + w.len()) != Some(&w[..]) {
            return None;
        }
        i += w.len();
    }
    i += s[i..].iter().take_while(|c| c.is_whitespace()).count();
    (s.get(i) == Some(&'{')).then_some(i)
}

/// The first segment of every `crate::` path in `code`, with its line; each name of a
/// `crate::{a, b::c}` group counts, on the line where it is written.
fn crate_paths(code: &str) -> Vec<(String, usize)> {
    let s: Vec<char> = code.chars().collect();
    let line_at = |i: usize| 1 + s[..i].iter().filter(|&&c| c == '\n').count();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let word_at = |i: usize| -> String { s[i..].iter().take_while(|&&c| ident(c)).collect() };
    let key: Vec<char> = "crate::".chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i + key.len() <= s.len() {
        if s[i..i + key.len()] != key[..] || (i > 0 && ident(s[i - 1])) {
            i += 1;
            continue;
        }
        let at = i + key.len();
        if s.get(at) == Some(&'{') {
            // The group's top-level items: the first word of each.
            let (mut depth, mut j, mut item_start) = (0usize, at, at + 1);
            while j < s.len() {
                match s[j] {
                    '{' => depth += 1,
                    '}' | ',' if depth == 1 => {
                        let skip = s[item_start..j]
                            .iter()
                            .take_while(|c| c.is_whitespace())
                            .count();
                        let name = word_at(item_start + skip);
                        if !name.is_empty() && name != "self" {
                            out.push((name, line_at(item_start + skip)));
                        }
                        item_start = j + 1;
                        if s[j] == '}' {
                            break;
                        }
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
                j += 1;
            }
            i = j + 1;
        } else {
            let name = word_at(at);
            if !name.is_empty() {
                out.push((name, line_at(at)));
            }
            i = at;
        }
    }
    out
}

// === cycles ===

/// The strongly connected sets of more than one module (Tarjan), each sorted.
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    struct Walk<'g> {
        g: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.g.get(v).into_iter().flat_map(BTreeMap::keys) {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut set = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    set.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if set.len() > 1 {
                    set.sort();
                    self.out.push(set);
                }
            }
        }
    }
    let mut walk = Walk {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.out.sort();
    walk.out
}

/// One shortest cycle through the first module of a strongly connected set, with the sites
/// of each of its edges.
fn describe(g: &Graph, set: &[String]) -> String {
    let inside: BTreeSet<&str> = set.iter().map(String::as_str).collect();
    let start = set[0].as_str();
    // Breadth first from `start` inside the set, until an edge leads back to it.
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    let mut last = None;
    while let Some(v) = queue.pop_front() {
        for w in g.get(v).into_iter().flat_map(BTreeMap::keys) {
            let w = w.as_str();
            if w == start {
                last = Some(v);
                break;
            }
            if inside.contains(w) && !came_from.contains_key(w) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
        if last.is_some() {
            break;
        }
    }
    let mut path = vec![start];
    let mut v = last.unwrap_or(start);
    while v != start {
        path.insert(1, v);
        v = came_from[v];
    }
    path.push(start);
    let mut text = format!("cycle: {}\n", path.join(" -> "));
    for pair in path.windows(2) {
        let sites = &g[pair[0]][pair[1]];
        let shown: Vec<String> = sites
            .iter()
            .take(6)
            .map(|s| format!("src/{}:{}", s.file, s.line))
            .collect();
        let more = match sites.len().saturating_sub(shown.len()) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        text.push_str(&format!(
            "  {} -> {}: {}{more}\n",
            pair[0],
            pair[1],
            shown.join(", ")
        ));
    }
    if set.len() > path.len() - 1 {
        text.push_str(&format!("  (all of {} reach each other)\n", set.join(", ")));
    }
    text
}
