//! Guards read from the source (RELIABILITY 32, 33), for what the type system and clippy
//! cannot see:
//! - every SQL statement in `src/store/` is parameterized: text interpolated into SQL
//!   (`format!`, `+`, `push_str`) is one of a fixed list of internal identifiers (table and
//!   column names, placeholder lists), never a value; and what `sqlx::query*` is given is a
//!   literal, a name or a call, never text assembled in place;
//! - a presented credential is compared with a known one in one place, in constant time
//!   (`governance::keys::same_digest`, `subtle`'s `ct_eq`);
//! - no template engine or code interpreter is in the dependency tree.
//!
//! The reader is a small lexer (comments, string, raw-string and char literals), not a
//! parser: a statement a macro or a function of another module assembles is not seen, and
//! the store has none.

#![expect(
    clippy::unwrap_used,
    reason = "a test that cannot read its sources fails loudly"
)]

use std::path::{Path, PathBuf};

/// What may be interpolated into SQL text, per file under `src/store/` (the expression as
/// written, whitespace collapsed), and why it is not a value.
const INTERNAL: &[(&str, &str, &str)] = &[
    (
        "budgets.rs",
        "amount",
        "a column expression chosen by a match on the budget's unit",
    ),
    (
        "budgets.rs",
        "c.column",
        "ScopeKind::column, a &'static column name",
    ),
    (
        "usage.rs",
        "group",
        "`CAST(day AS TEXT)` or `value`, chosen by a match",
    ),
    (
        "usage.rs",
        "values",
        "a fixed range filter with placeholders, or nothing",
    ),
    ("usage.rs", "join", "a fixed JOIN, or nothing"),
    (
        "usage.rs",
        "filters",
        "fixed filters with placeholders, pushed as literals",
    ),
    ("usage.rs", "by.expr()", "GroupBy::expr, a &'static column"),
    (
        "usage.rs",
        "amount",
        "a column expression chosen by a match on the unit",
    ),
    (
        "usage.rs",
        "column",
        "a &'static column name (ScopeKind::column)",
    ),
    ("keys.rs", "COLUMNS", "the table's column list, a const"),
    ("logs.rs", "COLUMNS", "the table's column list, a const"),
    (
        "logs.rs",
        "clauses.join(\" AND \")",
        "fixed clauses whose values are `$n` placeholders",
    ),
    ("logs.rs", "n", "a placeholder's number"),
    ("logs.rs", "n + 1", "a placeholder's number"),
    ("logs.rs", "limit + 1", "an integer, clamped to 1..=1000"),
    (
        "logs.rs",
        "marks.join(\", \")",
        "a list of `$n` placeholders",
    ),
    ("logs.rs", "list", "a list of `$n` placeholders"),
    (
        "logs.rs",
        "table",
        "one of a fixed array of three table names",
    ),
    (
        "directory.rs",
        "entity.table()",
        "Entity::table, a &'static table name",
    ),
    (
        "directory.rs",
        "entity.second_column()",
        "Entity::second_column, a &'static column name",
    ),
    (
        "usage_sqlite.rs",
        "head",
        "an INSERT head, a &'static str of this file",
    ),
    (
        "usage_sqlite.rs",
        "tail",
        "an ON CONFLICT tail, a &'static str of this file",
    ),
    (
        "usage_sqlite.rs",
        "vec![group; rows].join(\", \")",
        "groups of `?` placeholders",
    ),
    ("rollup.rs", "UPSERT_HEAD", "a const statement head"),
    ("rollup.rs", "UPSERT_TAIL", "a const statement tail"),
    (
        "mod.rs",
        "schema",
        "a test schema's name the store generates (gh_test_<time>_<uuid>)",
    ),
    (
        "mod.rs",
        "name",
        "a test schema's name read from the catalog (gh_test_...)",
    ),
];

/// Statements under `src/store/` given to `sqlx::query*` as text assembled in place, and
/// why they are safe.
const ASSEMBLED: &[(&str, &str, &str)] = &[
    (
        "budgets.rs",
        "&init_sql(c).replace('$', \"?\")",
        "init_sql's statement (checked above) with SQLite's placeholders",
    ),
    (
        "mod.rs",
        "&format!(\"CREATE SCHEMA {schema}\")",
        "store::test_schema: a schema for tests, named by the store itself",
    ),
];

/// `push_str` arguments under `src/store/` that are not SQL at all.
const NOT_SQL: &[(&str, &str, &str)] = &[(
    "logs.rs",
    "&line.join(\",\")",
    "a CSV line of the log export",
)];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A string literal; `text` is its value (escapes as written, `\`-newline joined).
    Str,
    /// Anything else: one character of code.
    Code,
}

#[derive(Debug, Clone)]
struct Tok {
    kind: Kind,
    text: String,
    line: usize,
}

/// The tokens of `src`: string literals whole, comments dropped, every other character
/// one token (whitespace included, so expressions can be read back as written).
fn lex(src: &str) -> Vec<Tok> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    while i < c.len() {
        let start_line = line;
        // Comments.
        if at(i) == '/' && at(i + 1) == '/' {
            while i < c.len() && at(i) != '\n' {
                i += 1;
            }
            continue;
        }
        if at(i) == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if at(i) == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if at(i) == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(at(i) == '\n');
                    i += 1;
                }
            }
            continue;
        }
        // Raw strings: r"..", r#".."#, br#".."#.
        let prev_ident = i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
        let raw_start = if !prev_ident && at(i) == 'r' {
            Some(i + 1)
        } else if !prev_ident && at(i) == 'b' && at(i + 1) == 'r' {
            Some(i + 2)
        } else {
            None
        };
        if let Some(mut j) = raw_start {
            let mut hashes = 0;
            while at(j) == '#' {
                hashes += 1;
                j += 1;
            }
            if at(j) == '"' {
                j += 1;
                let mut text = String::new();
                loop {
                    assert!(j < c.len(), "unterminated raw string at line {line}");
                    if at(j) == '"' && (0..hashes).all(|k| at(j + 1 + k) == '#') {
                        j += 1 + hashes;
                        break;
                    }
                    line += usize::from(at(j) == '\n');
                    text.push(at(j));
                    j += 1;
                }
                out.push(Tok {
                    kind: Kind::Str,
                    text,
                    line: start_line,
                });
                i = j;
                continue;
            }
        }
        // Strings: "..", b"..".
        let quote = if at(i) == '"' {
            Some(i + 1)
        } else if !prev_ident && at(i) == 'b' && at(i + 1) == '"' {
            Some(i + 2)
        } else {
            None
        };
        if let Some(mut j) = quote {
            let mut text = String::new();
            loop {
                assert!(j < c.len(), "unterminated string at line {line}");
                match at(j) {
                    '"' => {
                        j += 1;
                        break;
                    }
                    '\\' if at(j + 1) == '\n' => {
                        // A continuation: the newline and the next line's indent go.
                        j += 1;
                        while at(j).is_whitespace() {
                            line += usize::from(at(j) == '\n');
                            j += 1;
                        }
                    }
                    '\\' => {
                        text.push(at(j));
                        text.push(at(j + 1));
                        j += 2;
                    }
                    ch => {
                        line += usize::from(ch == '\n');
                        text.push(ch);
                        j += 1;
                    }
                }
            }
            out.push(Tok {
                kind: Kind::Str,
                text,
                line: start_line,
            });
            i = j;
            continue;
        }
        // Char literals ('x', '\n', '\u{1}'); a lifetime is code.
        if at(i) == '\'' {
            let end = if at(i + 1) == '\\' {
                (i + 3..c.len()).find(|&k| at(k) == '\'')
            } else if at(i + 2) == '\'' {
                Some(i + 2)
            } else {
                None
            };
            if let Some(end) = end {
                out.push(Tok {
                    kind: Kind::Code,
                    text: c[i..=end].iter().collect(),
                    line,
                });
                i = end + 1;
                continue;
            }
        }
        line += usize::from(at(i) == '\n');
        out.push(Tok {
            kind: Kind::Code,
            text: at(i).to_string(),
            line: start_line,
        });
        i += 1;
    }
    out
}

/// Tokens back to source text (a string literal quoted again), whitespace collapsed.
fn render(toks: &[Tok]) -> String {
    let mut s = String::new();
    for t in toks {
        match t.kind {
            Kind::Str => {
                s.push('"');
                s.push_str(&t.text);
                s.push('"');
            }
            Kind::Code => s.push_str(&t.text),
        }
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Does the code at `toks[i..]` read `word` (not as the end of a longer name)?
fn reads(toks: &[Tok], i: usize, word: &str) -> bool {
    let n = word.chars().count();
    if i + n > toks.len() {
        return false;
    }
    let word_start = word.starts_with(|ch: char| ch.is_alphanumeric() || ch == '_');
    let before_ok = !word_start
        || i == 0
        || toks[i - 1].kind == Kind::Str
        || !toks[i - 1]
            .text
            .chars()
            .all(|ch| ch.is_alphanumeric() || ch == '_');
    before_ok
        && toks[i..i + n].iter().zip(word.chars()).all(|(t, ch)| {
            t.kind == Kind::Code && t.text.len() == ch.len_utf8() && t.text.starts_with(ch)
        })
}

/// The arguments of the call whose `(` is at `toks[open]`, split at top-level commas, and
/// the index after its `)`.
fn args(toks: &[Tok], open: usize) -> (Vec<Vec<Tok>>, usize) {
    let mut out = vec![Vec::new()];
    let mut depth = 0;
    let mut i = open;
    loop {
        let t = &toks[i];
        if t.kind == Kind::Code {
            match t.text.as_str() {
                "(" | "[" | "{" => {
                    depth += 1;
                    if depth == 1 {
                        i += 1;
                        continue;
                    }
                }
                ")" | "]" | "}" => {
                    depth -= 1;
                    if depth == 0 {
                        if out.last().is_some_and(|a| render(a).is_empty()) {
                            out.pop();
                        }
                        return (out, i + 1);
                    }
                }
                "," if depth == 1 => {
                    out.push(Vec::new());
                    i += 1;
                    continue;
                }
                _ => {}
            }
        }
        out.last_mut().unwrap().push(t.clone());
        i += 1;
    }
}

/// Is this text SQL? An upper-case keyword of a statement or a clause.
fn is_sql(text: &str) -> bool {
    const WORDS: &[&str] = &[
        "SELECT", "INSERT", "UPDATE", "DELETE", "FROM", "WHERE", "VALUES", "CREATE", "DROP",
        "ALTER", "JOIN", "AND", "OR", "SET", "LIMIT", "LIKE", "IN", "ORDER", "GROUP", "PRAGMA",
    ];
    text.split(|ch: char| !ch.is_ascii_alphanumeric() && ch != '_')
        .any(|w| WORDS.contains(&w))
}

/// The expressions a format string interpolates: `{name}` captures, `{}` and `{0}`
/// positional arguments, `{name}` named ones (`name = expr`).
fn interpolated(fmt: &str, rest: &[Vec<Tok>]) -> Vec<String> {
    let positional: Vec<String> = rest
        .iter()
        .map(|a| render(a))
        .filter(|a| !is_named(a))
        .collect();
    let named = |name: &str| {
        rest.iter().map(|a| render(a)).find_map(|a| {
            let (n, e) = a.split_once('=')?;
            (is_named(&a) && n.trim() == name).then(|| e.trim().to_owned())
        })
    };
    let mut out = Vec::new();
    let mut next = 0;
    let mut chars = fmt.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
            }
            '{' => {
                let inner: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let name = inner.split(':').next().unwrap_or("").trim();
                let expr = if name.is_empty() {
                    next += 1;
                    positional.get(next - 1).cloned()
                } else if let Ok(n) = name.parse::<usize>() {
                    positional.get(n).cloned()
                } else {
                    Some(named(name).unwrap_or_else(|| name.to_owned()))
                };
                out.push(expr.unwrap_or_else(|| format!("<missing argument {inner}>")));
            }
            _ => {}
        }
    }
    out
}

/// `name = expr` (a named format argument), not `a == b`.
fn is_named(arg: &str) -> bool {
    arg.split_once('=').is_some_and(|(n, e)| {
        !e.starts_with('=')
            && !n.trim().is_empty()
            && n.trim().chars().all(|ch| ch.is_alphanumeric() || ch == '_')
    })
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every place under `src/store/` that puts text into SQL, with what it puts there:
/// `(file, line, expression)`; and every statement argument that is assembled in place.
fn store_sql_findings(root: &Path) -> (Vec<(String, usize, String)>, Vec<String>) {
    let mut paths = Vec::new();
    files(&root.join("src/store"), &mut paths);
    paths.sort();
    assert!(paths.len() >= 8, "only {paths:?} under src/store");
    // `"SELECT .."` then `.to_owned()`-like calls or `)`, then `+`.
    let plus_after = regex::Regex::new(r"^(?:\.[A-Za-z_][A-Za-z0-9_]*\(\)|\))*\+").unwrap();
    // `if cond { "a" } else { "b" }` with the literals taken out.
    let if_else_literals =
        regex::Regex::new(r"^\s*if\s[^{}]+\{\s*\}\s*else\s*\{\s*\}\s*$").unwrap();
    // A literal, a name, or a call of a named function with plain arguments.
    let simple = regex::Regex::new(
        r#"^&?(?:"(?:[^"\\]|\\.)*"|[A-Za-z_][A-Za-z0-9_:]*(?:\([A-Za-z0-9_.,& ]*\))?)$"#,
    )
    .unwrap();
    let mut interpolations = Vec::new();
    let mut problems = Vec::new();
    for path in &paths {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let toks = lex(&std::fs::read_to_string(path).unwrap());
        for i in 0..toks.len() {
            let here = |what: &str| format!("src/store/{file}:{}: {what}", toks[i].line);
            // format!("... SQL ...", args)
            if reads(&toks, i, "format!(") {
                let (a, _) = args(&toks, i + 7);
                let Some(first) = a.first() else { continue };
                // A format string is a literal (`concat!` aside, which the store does not use).
                let lits: Vec<&Tok> = first.iter().filter(|t| t.kind == Kind::Str).collect();
                let only_literal = first
                    .iter()
                    .all(|t| t.kind == Kind::Str || t.text.trim().is_empty());
                if lits.len() != 1 || !only_literal {
                    problems.push(here(&format!(
                        "format! without a literal format string: {}",
                        render(first)
                    )));
                    continue;
                }
                if is_sql(&lits[0].text) {
                    for e in interpolated(&lits[0].text, &a[1..]) {
                        interpolations.push((file.clone(), toks[i].line, e));
                    }
                }
            }
            // SQL text joined with `+` (`"SELECT .." + x`, `"..".to_owned() + x`,
            // `String::from("..") + x`, `x + ".."`).
            if toks[i].kind == Kind::Str && is_sql(&toks[i].text) {
                let code: Vec<&Tok> = toks[i + 1..]
                    .iter()
                    .filter(|t| !t.text.trim().is_empty())
                    .take(40)
                    .collect();
                let after: String = code.iter().map(|t| t.text.as_str()).collect();
                let joined_after = plus_after.is_match(&after);
                let prev = toks[..i].iter().rev().find(|t| !t.text.trim().is_empty());
                let joined_before = prev.is_some_and(|t| t.kind == Kind::Code && t.text == "+");
                if joined_after || joined_before {
                    problems.push(here(&format!("SQL joined with `+`: {:?}", toks[i].text)));
                }
            }
            // buf += ...: as `push_str`.
            if reads(&toks, i, "+=") {
                let rhs: Vec<Tok> = toks[i + 2..]
                    .iter()
                    .take_while(|t| !(t.kind == Kind::Code && t.text == ";"))
                    .cloned()
                    .collect();
                // A number's `+=` is left alone: a string's takes `&text` or a literal.
                let text = render(&rhs);
                let literal_only = rhs
                    .iter()
                    .all(|t| t.kind == Kind::Str || t.text.trim().is_empty());
                let stringy = text.starts_with('&') || rhs.iter().any(|t| t.kind == Kind::Str);
                if stringy && !literal_only {
                    interpolations.push((file.clone(), toks[i].line, text));
                }
            }
            // buf.push_str(...): a literal, or `if .. { "a" } else { "b" }`.
            if reads(&toks, i, ".push_str(") {
                let (a, _) = args(&toks, i + 9);
                let arg = a.first().map(|a| render(a)).unwrap_or_default();
                let code: String = a
                    .first()
                    .map(|a| {
                        a.iter()
                            .filter(|t| t.kind == Kind::Code)
                            .map(|t| t.text.as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                let literal_only = code.trim().is_empty() || if_else_literals.is_match(&code);
                let listed = NOT_SQL.iter().any(|(f, e, _)| *f == file && *e == arg);
                if !literal_only && !listed {
                    interpolations.push((file.clone(), toks[i].line, arg));
                }
            }
            // sqlx::query*(..): a literal, a name, or a call of a named function.
            if reads(&toks, i, "sqlx::query") {
                let mut j = i + "sqlx::query".len();
                while toks[j].kind == Kind::Code
                    && toks[j]
                        .text
                        .chars()
                        .all(|ch| ch.is_alphanumeric() || ch == '_')
                {
                    j += 1;
                }
                if reads(&toks, j, "::<") {
                    let mut depth = 0;
                    loop {
                        match toks[j].text.as_str() {
                            "<" => depth += 1,
                            ">" => {
                                depth -= 1;
                                if depth == 0 {
                                    j += 1;
                                    break;
                                }
                            }
                            _ => {}
                        }
                        j += 1;
                    }
                }
                if toks[j].text != "(" {
                    continue;
                }
                let (a, _) = args(&toks, j);
                let arg = a.first().map(|a| render(a)).unwrap_or_default();

                let listed = ASSEMBLED.iter().any(|(f, e, _)| *f == file && *e == arg);
                if !simple.is_match(&arg) && !listed {
                    problems.push(here(&format!("a statement assembled in place: {arg}")));
                }
            }
        }
    }
    (interpolations, problems)
}

#[test]
fn all_sql_in_the_store_is_parameterized() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (found, mut problems) = store_sql_findings(root);
    // A scan that found nothing would pass; the store builds a few dozen statements.
    assert!(found.len() >= 20, "only {found:?}");
    for (file, line, expr) in &found {
        if !INTERNAL.iter().any(|(f, e, _)| f == file && e == expr) {
            problems.push(format!(
                "src/store/{file}:{line}: `{expr}` is put into SQL text: bind it as a parameter \
                 ($n) instead; if it is an internal identifier (a table or column name from a \
                 fixed set), add it to INTERNAL in tests/guards.rs saying why"
            ));
        }
    }
    // Every entry of the list is still needed (a stale one would let a value of the same
    // name through).
    for (file, expr, why) in INTERNAL {
        if !found.iter().any(|(f, _, e)| f == file && e == expr) {
            problems.push(format!(
                "INTERNAL lists `{expr}` in {file} ({why}), no longer used"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The guard itself: it catches a value put into SQL in each way it looks for.
#[test]
fn the_sql_guard_catches_values_in_sql_text() {
    let dir = std::env::temp_dir().join(format!("gatehouse-guard-{}", std::process::id()));
    let store = dir.join("src/store");
    std::fs::create_dir_all(&store).unwrap();
    let mk = |name: &str, text: &str| std::fs::write(store.join(name), text).unwrap();
    for i in 0..7 {
        mk(&format!("pad{i}.rs"), "");
    }
    mk(
        "bad.rs",
        r####"
        // format!("SELECT {in_a_comment}") is not code.
        fn a(user: &str, t: &str) {
            let q = format!("SELECT * FROM t WHERE name = '{user}'");
            let q = format!("DELETE FROM x WHERE id = {}", t.trim());
            let q = format!(r#"UPDATE x SET a = "{v}""#, v = user);
            let q = "SELECT * FROM t WHERE name = '".to_owned() + user;
            let mut s = String::from("SELECT 1 WHERE a = ");
            s.push_str(user);
            s += &user.to_lowercase();
            n += 1;
            s += " LIMIT 10";
            s.push_str(if ok { " AND b = $1" } else { "" });
            let r = sqlx::query(&format!("SELECT {}", 1));
            let r = sqlx::query_scalar::<_, i64>(&text);
            let msg = format!("no key {user}");
            let ok = format!("SELECT {COLUMNS} FROM t WHERE a = $1");
        }
    "####,
    );
    let (found, problems) = store_sql_findings(&dir);
    let exprs: Vec<&str> = found.iter().map(|(_, _, e)| e.as_str()).collect();
    // `sqlx::query(&format!("SELECT {}", 1))` is both an interpolation and assembled in place.
    assert_eq!(
        exprs,
        [
            "user",
            "t.trim()",
            "user",
            "user",
            "&user.to_lowercase()",
            "1",
            "COLUMNS"
        ]
    );
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].contains("joined with `+`"), "{problems:#?}");
    assert!(problems[1].contains("assembled in place"), "{problems:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One comparison of a presented credential with a known one, in constant time: `ct_eq` is
/// called in `same_digest` only, and the admin token's check uses it (virtual keys' too:
/// `src/governance/keys.rs::digests_are_equal_only_when_every_byte_is`).
#[test]
fn credentials_are_compared_in_constant_time_in_one_place() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    files(&root.join("src"), &mut paths);
    let mut ct = Vec::new();
    for p in &paths {
        let text = std::fs::read_to_string(p).unwrap();
        let code = render(&lex(&text));
        for (n, _) in code.match_indices("ct_eq(") {
            ct.push((p.strip_prefix(root).unwrap().display().to_string(), n));
        }
    }
    assert_eq!(
        ct.len(),
        1,
        "ct_eq must be called in same_digest only: {ct:?}"
    );
    assert_eq!(ct[0].0, "src/governance/keys.rs");
    let keys = render(&lex(&std::fs::read_to_string(
        root.join("src/governance/keys.rs"),
    )
    .unwrap()));
    assert!(
        keys.contains(
            "pub fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool { bool::from(a.ct_eq(b)) }"
        ),
        "same_digest must be subtle's ct_eq"
    );
    assert!(
        keys.contains("if !same_digest(stored, &d)"),
        "KeyRing::check"
    );
    let admin = render(&lex(&std::fs::read_to_string(
        root.join("src/admin/mod.rs"),
    )
    .unwrap()));
    assert!(
        admin.contains("same_digest(&digest(admin.expose()), &digest(token))"),
        "the admin token's check"
    );
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(manifest.lines().any(|l| l.starts_with("subtle =")));
}

/// No template engine or interpreter in the dependency tree: nothing could evaluate what a
/// request carries (RELIABILITY 33).
#[test]
fn no_template_engine_or_interpreter_is_a_dependency() {
    const BANNED: &[&str] = &[
        "tera",
        "handlebars",
        "minijinja",
        "askama",
        "liquid",
        "tinytemplate",
        "upon",
        "sailfish",
        "ramhorns",
        "mustache",
        "rhai",
        "boa_engine",
        "mlua",
        "rlua",
        "pyo3",
        "deno_core",
        "rquickjs",
        "quickjs-rs",
        "v8",
        "wasmtime",
        "wasmer",
        "evalexpr",
        "jsonnet-rs",
        "jrsonnet-evaluator",
        "libloading",
        "subprocess",
        "duct",
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap();
    let names: Vec<&str> = lock
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .map(|l| l.trim_end_matches('"'))
        .collect();
    assert!(
        names.len() > 100,
        "only {} packages in Cargo.lock",
        names.len()
    );
    let found: Vec<&&str> = names.iter().filter(|n| BANNED.contains(n)).collect();
    assert!(
        found.is_empty(),
        "{found:?} can evaluate text; the gateway must not"
    );
}
