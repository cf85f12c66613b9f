//! A validating single pass over a JSON document that finds one top-level member without
//! building anything: how a relayed reply's `usage` is read (STYLE §3.2) for a few hundred
//! instructions instead of a full parse that decodes every string of the content.
//!
//! The whole document is checked against the JSON grammar (RFC 8259: UTF-8, string escapes,
//! no raw control characters, number syntax, literals, nesting up to [`MAX_DEPTH`], nothing
//! after the value), so a body that passes here is one a full parser would accept. String
//! contents, the bulk of a reply, are crossed with a SIMD search for the next quote or
//! backslash.

/// Deepest nesting accepted (serde_json's own limit).
const MAX_DEPTH: usize = 128;

/// Why a document was refused, with the byte offset where it went wrong.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at byte {0}")]
pub struct Invalid(pub usize);

/// The raw value of the top-level object's member `key` (the last one if it repeats), or
/// `None` when the object has no such member. Fails unless `doc` is one valid JSON object.
pub fn top_level_member<'a>(doc: &'a [u8], key: &str) -> Result<Option<&'a [u8]>, Invalid> {
    let [found] = top_level_members(doc, [key])?;
    Ok(found)
}

/// [`top_level_member`] for each of `keys`, in one pass over `doc`.
pub fn top_level_members<'a, const N: usize>(
    doc: &'a [u8],
    keys: [&str; N],
) -> Result<[Option<&'a [u8]>; N], Invalid> {
    let mut found = [None; N];
    for_each_member(doc, |k, v| {
        if let Some(at) = keys.iter().position(|key| k == *key) {
            found[at] = Some(v);
        }
        true
    })?;
    Ok(found)
}

/// Call `f` with each member of `obj`, one JSON object (surrounding whitespace allowed), in
/// order: the key's raw contents (escapes not decoded; the document's UTF-8 is checked once,
/// so the key comes as text) and the raw value. `f` returns `false` to stop early. Fails
/// unless the part of `obj` walked is valid JSON (all of it, when `f` never stops).
pub fn for_each_member<'a>(
    obj: &'a [u8],
    mut f: impl FnMut(&'a str, &'a [u8]) -> bool,
) -> Result<(), Invalid> {
    let text = match std::str::from_utf8(obj) {
        Ok(t) => t,
        Err(e) => return Err(Invalid(e.valid_up_to())),
    };
    let mut s = Scanner { b: obj, i: 0 };
    // Containers still open below the top level: true for an object, false for an array.
    let mut stack: Vec<bool> = Vec::with_capacity(16);
    s.ws();
    s.expect(b'{')?;
    s.ws();
    if s.peek() == Some(b'}') {
        s.i += 1;
    } else {
        loop {
            let k = s.string()?;
            s.ws();
            s.expect(b':')?;
            s.ws();
            let start = s.i;
            s.value(&mut stack)?;
            // Quotes are ASCII, so the span is on character boundaries.
            let key = text.get(k.0..k.1).ok_or(Invalid(k.0))?;
            if !f(key, &obj[start..s.i]) {
                return Ok(());
            }
            s.ws();
            match s.next()? {
                b',' => s.ws(),
                b'}' => break,
                _ => return Err(Invalid(s.i - 1)),
            }
        }
    }
    s.ws();
    if s.i != obj.len() {
        return Err(Invalid(s.i));
    }
    Ok(())
}

/// Length of the leading run of bytes that need no attention inside a string: anything but a
/// quote, a backslash or a control character. Eight bytes at a time (SWAR): the content of a
/// reply is most of its bytes.
fn plain_run(b: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // High bit set in each byte of `x` that is zero (exact for the lowest such byte).
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut n = 0;
    for chunk in b.chunks_exact(8) {
        let mut w = [0; 8];
        w.copy_from_slice(chunk);
        let x = u64::from_le_bytes(w);
        let hits = zero(x ^ (ONES * u64::from(b'"')))
            | zero(x ^ (ONES * u64::from(b'\\')))
            // bytes below 0x20: (x - 0x20) borrows into the high bit where x < 0x20 and
            // the byte's own high bit is clear.
            | (x.wrapping_sub(ONES * 0x20) & !x & HIGH);
        if hits != 0 {
            return n + (hits.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    n + b[n..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .unwrap_or(b.len() - n)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Result<u8, Invalid> {
        let c = self.peek().ok_or(Invalid(self.i))?;
        self.i += 1;
        Ok(c)
    }

    fn expect(&mut self, c: u8) -> Result<(), Invalid> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(Invalid(self.i))
        }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// A string at the cursor; returns the span of its raw contents (escapes not decoded).
    fn string(&mut self) -> Result<(usize, usize), Invalid> {
        self.expect(b'"')?;
        let start = self.i;
        loop {
            self.i += plain_run(&self.b[self.i..]);
            match self.peek() {
                None => return Err(Invalid(self.b.len())),
                Some(c) if c < 0x20 => return Err(Invalid(self.i)),
                _ => {}
            }
            if self.b[self.i] == b'"' {
                self.i += 1;
                return Ok((start, self.i - 1));
            }
            // A backslash: one escape.
            self.i += 1;
            match self.next()? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                b'u' => {
                    let at = self.i;
                    match self.hex4()? {
                        // A high surrogate must be followed by an escaped low one.
                        0xD800..=0xDBFF => {
                            if !self.b[self.i..].starts_with(b"\\u") {
                                return Err(Invalid(at));
                            }
                            self.i += 2;
                            if !matches!(self.hex4()?, 0xDC00..=0xDFFF) {
                                return Err(Invalid(at));
                            }
                        }
                        0xDC00..=0xDFFF => return Err(Invalid(at)),
                        _ => {}
                    }
                }
                _ => return Err(Invalid(self.i - 1)),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, Invalid> {
        let mut v = 0;
        for _ in 0..4 {
            let c = self.next()?;
            let d = (c as char).to_digit(16).ok_or(Invalid(self.i - 1))?;
            v = v * 16 + d;
        }
        Ok(v)
    }

    fn digits(&mut self) -> Result<(), Invalid> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        if self.i == start {
            Err(Invalid(self.i))
        } else {
            Ok(())
        }
    }

    fn number(&mut self) -> Result<(), Invalid> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits()?,
            _ => return Err(Invalid(self.i)),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.digits()?;
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Invalid> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Invalid(self.i))
        }
    }

    /// One whole value at the cursor, nested containers included (iteratively: `stack`
    /// holds the containers still open).
    fn value(&mut self, stack: &mut Vec<bool>) -> Result<(), Invalid> {
        let base = stack.len();
        loop {
            // Expecting a value.
            self.ws();
            match self.peek() {
                Some(b'{') | Some(b'[') => {
                    let object = self.peek() == Some(b'{');
                    if stack.len() - base >= MAX_DEPTH {
                        return Err(Invalid(self.i));
                    }
                    self.i += 1;
                    self.ws();
                    let close = if object { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.i += 1;
                    } else {
                        stack.push(object);
                        if object {
                            self.member_key()?;
                        }
                        continue;
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                _ => self.number()?,
            }
            // A value ended: close containers or move to the next element.
            loop {
                if stack.len() == base {
                    return Ok(());
                }
                self.ws();
                let object = stack[stack.len() - 1];
                match (self.next()?, object) {
                    (b',', true) => {
                        self.ws();
                        self.member_key()?;
                        break;
                    }
                    (b',', false) => break,
                    (b'}', true) | (b']', false) => {
                        stack.pop();
                    }
                    _ => return Err(Invalid(self.i - 1)),
                }
            }
        }
    }

    /// `"key":` inside a nested object.
    fn member_key(&mut self) -> Result<(), Invalid> {
        self.string()?;
        self.ws();
        self.expect(b':')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn walks_the_members_of_an_object() {
        let doc = br#" {"a": 1, "b\"c" :{"x":[1,{"y":2}]},"d":"v"} "#;
        let mut seen = Vec::new();
        for_each_member(doc, |k, v| {
            seen.push((k.to_owned(), v.to_vec()));
            true
        })
        .unwrap();
        let seen: Vec<(&str, &[u8])> = seen.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        assert_eq!(
            seen,
            [
                ("a", &b"1"[..]),
                (r#"b\"c"#, br#"{"x":[1,{"y":2}]}"#),
                ("d", br#""v""#),
            ]
        );
        // Stopped early: the rest is not looked at.
        let mut n = 0;
        for_each_member(br#"{"a":1,"b":2,"c":"#, |_, _| {
            n += 1;
            n < 2
        })
        .unwrap();
        assert_eq!(n, 2);
        for bad in [
            &br#"{"a":1,}"#[..],
            b"[1]",
            br#"{"a":1} x"#,
            b"{\"a\":\"\xff\"}",
        ] {
            assert!(for_each_member(bad, |_, _| true).is_err(), "{bad:?}");
        }
        for_each_member(b"{}", |_, _| panic!("no members")).unwrap();
    }

    fn usage(doc: &str) -> Result<Option<&str>, Invalid> {
        top_level_member(doc.as_bytes(), "usage")
            .map(|v| v.map(|v| std::str::from_utf8(v).unwrap()))
    }

    #[test]
    fn finds_the_top_level_member_only() {
        let doc = r#"{"choices":[{"usage":1,"message":{"content":"\"usage\": 7"}}],"usage" : {"a":[1,2.5e-3,true,null]} ,"z":"\u00e9"}"#;
        assert_eq!(usage(doc), Ok(Some(r#"{"a":[1,2.5e-3,true,null]}"#)));
        assert_eq!(usage(r#"{"choices":[{"usage":1}]}"#), Ok(None));
        assert_eq!(usage("{}"), Ok(None));
        assert_eq!(usage(r#"{"e":"\ud83d\ude00","usage":2}"#), Ok(Some("2")));
        assert_eq!(usage(" {\"usage\":null} \n"), Ok(Some("null")));
    }

    #[test]
    fn finds_several_members_in_one_pass() {
        let doc = br#"{"object":"response","x":{"object":1},"usage":{"n":1},"object":"chat"}"#;
        let [object, usage, none] = top_level_members(doc, ["object", "usage", "none"]).unwrap();
        assert_eq!(
            object,
            Some(&br#""chat""#[..]),
            "the last of a repeated member"
        );
        assert_eq!(usage, Some(&br#"{"n":1}"#[..]));
        assert_eq!(none, None);
        assert!(top_level_members(br#"{"usage":1,}"#, ["usage", "object"]).is_err());
    }

    #[test]
    fn plain_run_stops_at_the_first_special_byte() {
        for len in 0..40 {
            for special in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                for at in 0..=len {
                    let mut v = vec![b'a'; len];
                    v.extend_from_slice(&[0xe9, 0x20, 0x7f, 0x80, 0xff]);
                    v.insert(at, special);
                    // Bytes after the special one, some of them special too.
                    v.push(b'"');
                    assert_eq!(plain_run(&v), at, "len {len}, byte {special:#x} at {at}");
                }
            }
            assert_eq!(plain_run(&vec![b'x'; len]), len);
        }
    }

    #[test]
    fn refuses_what_a_parser_refuses() {
        for bad in [
            "",
            "[]",
            "{",
            r#"{"usage":{"a":1}"#,
            r#"{"usage":1,}"#,
            r#"{"usage":01}"#,
            r#"{"usage":1.}"#,
            r#"{"usage":-}"#,
            r#"{"usage":tru}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12G4"}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00\ud800"}"#,
            r#"{"a":"\ud800\u0041"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":[1,2}"#,
            r#"{"a":{"b":1]}"#,
            r#"{"a":1} x"#,
            r#"{"a":"unterminated}"#,
            r#"{"a" 1}"#,
        ] {
            assert!(usage(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(top_level_member(b"{\"a\":\"\xff\"}", "a").is_err());
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(usage(&deep).is_err());
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            ".*".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                prop::collection::btree_map("[a-z\"\\\\]{0,6}", inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Agrees with serde_json on documents it writes and on any bytes at all.
        #[test]
        fn agrees_with_serde_json(v in json_value(), usage_v in json_value(), pretty: bool) {
            let mut obj = serde_json::Map::new();
            obj.insert("before".into(), v.clone());
            obj.insert("usage".into(), usage_v.clone());
            obj.insert("after".into(), v);
            let doc = serde_json::Value::Object(obj);
            let text = if pretty { serde_json::to_string_pretty(&doc) } else { serde_json::to_string(&doc) }.unwrap();
            let got = top_level_member(text.as_bytes(), "usage").unwrap().unwrap();
            let parsed: serde_json::Value = serde_json::from_slice(got).unwrap();
            prop_assert_eq!(parsed, usage_v);
        }

        #[test]
        fn validity_matches_serde_json(bytes in prop::collection::vec(prop_oneof![
            Just(b'{'), Just(b'}'), Just(b'['), Just(b']'), Just(b'"'), Just(b':'), Just(b','),
            Just(b'\\'), Just(b'1'), Just(b'-'), Just(b'.'), Just(b'e'), Just(b' '), Just(b'a'),
            Just(b'n'), Just(b'u'), Just(b'l'), any::<u8>(),
        ], 0..40)) {
            let ours = top_level_member(&bytes, "a").is_ok();
            let theirs = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes).is_ok();
            prop_assert_eq!(ours, theirs, "{:?}", String::from_utf8_lossy(&bytes));
        }
    }
}
