//! Search queries evaluated on one stored event, for the live tail.
//!
//! [`Matcher`] gives a query (after `normalize_negation`) the meaning search
//! gives it, tantivy's `QueryParser` on the hot schema with default fields
//! `message` and `fields` and AND by default, without an index: it walks
//! tantivy's own query AST over the event, reading each value as the hot
//! index indexes it. `message` and `reason` are words (split on what is not
//! alphanumeric, lowercased, words of 40 bytes or more dropped but counted).
//! The other promoted fields match whole and case-sensitively;
//! `timestamp:"…"` matches to the second, its ranges to the millisecond.
//! Nested values are named by path (`user.id:42`, `fields.user.id:42`, `a\.b`
//! for a key with a dot), arrays are transparent, RFC 3339 strings starting
//! with a digit are dates, and a word matches as a number, date or boolean
//! and as text. On `fields`, ranges compare whole strings, case-sensitively,
//! and `IN` elements are words as written (`IN [Foo]` finds nothing). Bare
//! words search `message` and the nested key `""` only, not every nested
//! value: that is what tantivy does with a JSON default field. `"pay fa"*`
//! is a phrase prefix, `pay*` the word `pay`. A clause of only `-x` matches
//! nothing; a query that only excludes is refused, as search refuses it.
//!
//! [`Matcher::parse`] refuses what search refuses: syntax errors, regexes,
//! a range, `IN` or `:*` on a name off the schema (`status:>=500`,
//! `user.id:*`: write `fields.status`), `:*` on `id`, `message` or `reason`
//! (no fast values), bad dates. It also refuses what search answers from
//! the index rather than the event: slop on three or more words (tantivy
//! walks them rarest first), range bounds of two types or true/false
//! (tantivy 0.27 panics, finds nothing or compares text with a number's
//! bytes). Knowingly different: a phrase prefix takes every word with the
//! prefix (tantivy: the segment's first 50); numbers compare as numbers
//! (tantivy: in the type of the path's column); tantivy keeps no range or
//! `:*` values below 20 levels of nesting, nor raw values over 65,530 bytes.
//! The tests compare with tantivy on the same events and pin these.

use std::cmp::Ordering;
use std::mem::discriminant;
use std::ops::Bound;

use serde_json::Value;
use tantivy::query_grammar::{Occur, UserInputAst, UserInputBound as B, UserInputLeaf as L};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A search query compiled for matching single events (the live tail).
#[derive(Debug)]
pub struct Matcher(Node);

#[derive(Debug)]
enum Node {
    All,
    /// Must, should (one at least, if no must), must not.
    Bool(Vec<Node>, Vec<Node>, Vec<Node>),
    /// A field of the event, keys under it (for `fields`), the test.
    Leaf(String, Kind, Vec<String>, Pred),
}

const NOTHING: Node = Node::Bool(Vec::new(), Vec::new(), Vec::new());

impl Node {
    /// See [`Matcher::required_bytes`]: a must clause's, the longest.
    fn required(&self) -> Option<Vec<u8>> {
        match self {
            Node::Leaf(_, Kind::Raw, _, Pred::Is(Val::Str(v)))
                if !v.is_empty()
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.:/@".contains(&b)) =>
            {
                Some(format!("\"{v}\"").into_bytes())
            }
            // A whole number in `fields` is in the text as its digits
            // (as sent, or as serde_json writes it back: `5e2` → `500.0`;
            // below 10^15 it never uses an exponent), and so is the word
            // of a string holding it.
            Node::Leaf(_, Kind::Json, _, Pred::Is(Val::I(n)))
                if (0..1_000_000_000_000_000).contains(n) =>
            {
                Some(n.to_string().into_bytes())
            }
            // A word of digits is in the text as it is (digits have no case).
            Node::Leaf(_, Kind::Json, _, Pred::Word(w))
                if !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Some(w.clone().into_bytes())
            }
            Node::Bool(must, should, _) if must.is_empty() => {
                // Alternatives (a number as a number or as a word): only
                // bytes every one of them requires.
                let mut each = should.iter().map(Node::required);
                let first = each.next()??;
                each.all(|r| r.as_ref() == Some(&first)).then_some(first)
            }
            Node::Bool(must, _, _) => must.iter().filter_map(Node::required).max_by_key(Vec::len),
            _ => None,
        }
    }
}

/// How the hot schema indexes a field.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Raw,
    Date,
    Json,
    Stored,
}

/// The hot schema's field of that name: its kind, whether it is fast (`:*`).
fn schema(name: &str) -> Option<(Kind, bool)> {
    Some(match name {
        "type" | "level" | "service" | "host" | "request_id" | "outcome" => (Kind::Raw, true),
        "id" => (Kind::Raw, false),
        "timestamp" | "received_at" => (Kind::Date, true),
        "message" | "reason" => (Kind::Text, false),
        "fields" => (Kind::Json, true),
        "_source" => (Kind::Stored, false),
        _ => return None,
    })
}

#[derive(Debug)]
enum Pred {
    Exists,
    /// A word equal to this (lowercased, but as given in `IN` on `fields`).
    Word(String),
    /// The whole value; a date cut to the second.
    Is(Val),
    /// Lowercased words at their positions, slop, the last word a prefix.
    Phrase(Vec<(u32, String)>, u32, bool),
    Range(Bound<Val>, Bound<Val>),
}

/// A typed value; numbers as tantivy normalizes them (i64 when integral
/// and in range, then u64), dates in nanoseconds.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Str(String),
    I(i64),
    U(u64),
    F(f64),
    Date(i64),
    Bool(bool),
}

const SEC: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;

impl Matcher {
    /// Parses the query text (already normalized); Err with a message for
    /// syntax the tail cannot evaluate.
    pub fn parse(query: &str) -> Result<Matcher, String> {
        let query = query.trim();
        if query.is_empty() || query == "*" {
            return Ok(Matcher(Node::All));
        }
        let ast = tantivy::query_grammar::parse_query(query)
            .map_err(|_| format!("invalid query syntax: {query}"))?;
        // tantivy lets a query of one empty clause through, matching nothing.
        let exempt = matches!(&ast, UserInputAst::Leaf(_))
            || matches!(&ast, UserInputAst::Clause(c) if c.is_empty());
        match compile(ast)? {
            (None, _) if exempt => Ok(Matcher(NOTHING)),
            (_, true) => Err("the query only excludes: add what to match, or `*`".into()),
            (node, false) => Ok(Matcher(node.unwrap_or(NOTHING))),
        }
    }

    /// Whether the stored event matches.
    pub fn matches(&self, event: &Value) -> bool {
        self.0.matches(event)
    }

    /// Whether it matches every event (`*` or empty): no need to look.
    pub fn matches_everything(&self) -> bool {
        matches!(self.0, Node::All)
    }

    /// Bytes every matching event's stored JSON holds, when the query
    /// requires an exact keyword value (`level:error` needs `"error"`) or
    /// a whole number in `fields` (`status:500` needs `500`), so that an
    /// event without them is passed over unparsed. Only keywords JSON
    /// writes as they are (letters, digits, `-_.:/@`) qualify.
    pub fn required_bytes(&self) -> Option<Vec<u8>> {
        self.0.required()
    }

    /// The event's top-level members the query reads (all it reads: an
    /// event holding only these matches as the whole event does).
    pub fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        self.0.names(&mut names);
        names
    }
}

/// The node (None: an empty clause, which tantivy drops) and whether it only
/// excludes (tantivy's `all_negative`, true of an empty clause).
fn compile(ast: UserInputAst) -> Result<(Option<Node>, bool), String> {
    let subs = match ast {
        UserInputAst::Boost(ast, _) => return compile(*ast),
        UserInputAst::Clause(subs) => subs,
        UserInputAst::Leaf(leaf) => {
            let mut nodes = compile_leaf(*leaf)?;
            return Ok(match nodes.len() {
                0 => (None, true),
                1 => (nodes.pop(), false),
                _ => (Some(Node::Bool(vec![], nodes, vec![])), false),
            });
        }
    };
    let (mut must, mut should, mut not, mut negative) = (vec![], vec![], vec![], true);
    for (occur, sub) in subs {
        let (node, sub_negative) = compile(sub)?;
        let occur = occur.unwrap_or(Occur::Must);
        negative &= occur == Occur::MustNot || sub_negative;
        match occur {
            Occur::Must => must.extend(node),
            Occur::Should => should.extend(node),
            Occur::MustNot => not.extend(node),
        }
    }
    let node = match (must.len(), should.len(), not.len()) {
        (0, 0, 0) => None,
        (1, 0, 0) => must.pop(),
        (0, 1, 0) => should.pop(),
        _ => Some(Node::Bool(must, should, not)),
    };
    Ok((node, negative))
}

/// A leaf's alternatives (none: an empty clause).
fn compile_leaf(input: L) -> Result<Vec<Node>, String> {
    let (field, what) = match &input {
        L::All => return Ok(vec![Node::All]),
        L::Regex { .. } => return Err("regex queries (/…/) are not supported".into()),
        L::Literal(l) => return literal(l.field_name.as_deref(), &l.phrase, l.slop, l.prefix),
        L::Exists { field } => return exists(field),
        L::Range { field, .. } => (field.as_deref(), "a range"),
        L::Set { field, .. } => (field.as_deref(), "IN"),
    };
    let field = field.ok_or_else(|| format!("{what} needs a field (`field:…`)"))?;
    let (name, kind, _, keys) =
        find_field(field).ok_or_else(|| format!("{what} on `{field}`: not in the schema"))?;
    let keys = nested(&name, kind, keys)?;
    let leaf = |pred| Node::Leaf(name.clone(), kind, keys.clone(), pred);
    let bound = |b: &B| -> Result<Bound<Val>, String> {
        Ok(match b {
            B::Inclusive(t) if t != "*" => Bound::Included(boundary(&name, kind, t)?),
            B::Exclusive(t) if t != "*" => Bound::Excluded(boundary(&name, kind, t)?),
            _ => Bound::Unbounded,
        })
    };
    match &input {
        L::Range { lower, upper, .. } => {
            let (lo, hi) = (bound(lower)?, bound(upper)?);
            let (a, b) = (inner(&lo), inner(&hi));
            match (a, b) {
                (None, None) => Ok(vec![]),
                (Some(Val::Bool(_)), _) | (_, Some(Val::Bool(_))) => {
                    Err("a range on true/false".into())
                }
                (Some(a), Some(b)) if discriminant(a) != discriminant(b) => {
                    Err(format!("range bounds of two types: {lower:?}, {upper:?}"))
                }
                _ => Ok(vec![leaf(Pred::Range(lo, hi))]),
            }
        }
        L::Set { elements, .. } if elements.is_empty() => Ok(vec![NOTHING]),
        L::Set { elements, .. } => (elements.iter())
            .map(|e| match boundary(&name, kind, e)? {
                Val::Str(s) if kind != Kind::Raw => Ok(leaf(Pred::Word(s))),
                v => Ok(leaf(Pred::Is(v))),
            })
            .collect(),
        _ => unreachable!("returned above"),
    }
}

fn inner(bound: &Bound<Val>) -> Option<&Val> {
    match bound {
        Bound::Included(v) | Bound::Excluded(v) => Some(v),
        Bound::Unbounded => None,
    }
}

fn literal(field: Option<&str>, text: &str, slop: u32, prefix: bool) -> Result<Vec<Node>, String> {
    let json = |keys| ("fields".into(), Kind::Json, true, keys);
    let targets = match field {
        Some(f) => vec![find_field(f).unwrap_or_else(|| json(split_path(f)))],
        None => vec![("message".into(), Kind::Text, false, vec![]), json(vec![])],
    };
    let (mut nodes, mut error) = (Vec::new(), None);
    for (name, kind, _, keys) in targets {
        let preds = nested(&name, kind, keys).and_then(|keys| {
            let mut preds = match kind {
                Kind::Stored => return Err(format!("`{name}` is not searchable")),
                Kind::Raw if prefix => return Err(format!("`{name}:\"…\"*` needs two words")),
                Kind::Raw => vec![Pred::Is(Val::Str(text.into()))],
                Kind::Date => vec![Pred::Is(Val::Date(date(text)? / SEC * SEC))],
                Kind::Text => vec![],
                Kind::Json => Vec::from_iter(typed(text, true).map(Pred::Is)),
            };
            if matches!(kind, Kind::Text | Kind::Json) {
                preds.extend(words(text, slop, prefix)?);
            }
            let leaf = move |p| Node::Leaf(name.clone(), kind, keys.clone(), p);
            Ok(preds.into_iter().map(leaf))
        });
        match preds {
            Ok(preds) => nodes.extend(preds),
            Err(e) => error = error.or(Some(e)),
        }
    }
    match error {
        Some(e) if nodes.is_empty() => Err(e),
        _ => Ok(nodes),
    }
}

fn exists(field: &str) -> Result<Vec<Node>, String> {
    match find_field(field) {
        None => Err(format!("no field `{field}` (nested: `fields.{field}:*`)")),
        Some((_, _, false, _)) => Err(format!("`{field}:*` needs fast values")),
        Some((name, kind, _, keys)) if kind == Kind::Json || keys.is_empty() => {
            Ok(vec![Node::Leaf(name, kind, keys, Pred::Exists)])
        }
        Some(_) => Ok(vec![NOTHING]),
    }
}

/// A literal's words: one word or a phrase.
fn words(text: &str, slop: u32, prefix: bool) -> Result<Option<Pred>, String> {
    let mut words: Vec<_> = tokens(text)
        .map(|(w, pos)| (pos, lower(w).collect()))
        .collect();
    let n = words.len();
    if prefix && n <= 1 {
        return Err(format!("`\"{text}\"*` needs two words"));
    } else if slop > 0 && n > 2 {
        return Err(format!("slop (~{slop}) on more than two words"));
    } else if prefix && n > 2 {
        // tantivy wants the prefix right after the word before it, not
        // counting a dropped long word (unless that is the only word).
        words[n - 1].0 = words[n - 2].0 + 1;
    }
    Ok(match n {
        0 => None,
        1 => words.pop().map(|w| Pred::Word(w.1)),
        _ => Some(Pred::Phrase(words, slop, prefix)),
    })
}

/// A range bound or `IN` element (tantivy's `compute_boundary_term`).
fn boundary(name: &str, kind: Kind, text: &str) -> Result<Val, String> {
    match kind {
        Kind::Stored => Err(format!("`{name}` is not searchable")),
        Kind::Raw => Ok(Val::Str(text.into())),
        Kind::Date => Ok(Val::Date(date(text)?)),
        Kind::Json => Ok(typed(text, false).unwrap_or(Val::Str(text.into()))),
        Kind::Text => match words(text, 0, false)? {
            Some(Pred::Word(word)) => Ok(Val::Str(word)),
            _ => Err(format!("`{text}` is not one word, as `{name}` needs")),
        },
    }
}

/// tantivy's `Schema::find_field` on the hot schema: the field a name starts
/// with, its kind, whether it is fast, and the keys after it.
fn find_field(name: &str) -> Option<(String, Kind, bool, Vec<String>)> {
    let mut keys = split_path(name);
    let (kind, fast) = schema(&keys[0])?;
    Some((keys.remove(0), kind, fast, keys))
}

/// The keys a word, range or `IN` looks under (`fields:x`: the key "").
fn nested(name: &str, kind: Kind, keys: Vec<String>) -> Result<Vec<String>, String> {
    match kind {
        Kind::Json if keys.is_empty() => Ok(vec![String::new()]),
        _ if kind == Kind::Json || keys.is_empty() => Ok(keys),
        _ => Err(format!("`{name}` has no nested values")),
    }
}

/// A JSON path's keys: split on dots, `\.` a dot in a key.
fn split_path(path: &str) -> Vec<String> {
    let (mut keys, mut escaped) = (vec![String::new()], false);
    for c in path.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '.' if !escaped => keys.push(String::new()),
            _ => (keys.last_mut().unwrap().push(c), escaped = false).1,
        }
    }
    keys
}

/// The words of tantivy's "default" analyzer, not yet lowercased, with their
/// positions: split on what is not alphanumeric, 40 bytes or more dropped.
fn tokens(text: &str) -> impl Iterator<Item = (&str, u32)> {
    let words = text.split(|c: char| !c.is_alphanumeric());
    let words = words.filter(|w| !w.is_empty()).zip(0..);
    words.filter(|(w, _)| w.len() < 40)
}

fn lower(word: &str) -> impl Iterator<Item = char> + '_ {
    word.chars().flat_map(char::to_lowercase)
}

/// Whether the word lowercased is `text`.
fn eq_lower(word: &str, text: &str) -> bool {
    match word.is_ascii() {
        true => word
            .bytes()
            .map(|b| b.to_ascii_lowercase())
            .eq(text.bytes()),
        false => lower(word).eq(text.chars()),
    }
}

fn date(text: &str) -> Result<i64, String> {
    let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| format!("`{text}`: {e}"))?;
    let ns = t.unix_timestamp_nanos();
    Ok(ns.clamp(i64::MIN.into(), i64::MAX.into()) as i64)
}

fn nanos(text: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    t.unix_timestamp_nanos().try_into().ok()
}

/// A word on `fields` as tantivy types it (a term's date cut to the second).
fn typed(text: &str, term: bool) -> Option<Val> {
    if let Some(ns) = nanos(text) {
        return Some(Val::Date(if term { ns / SEC * SEC } else { ns }));
    }
    let parsed = (text.parse(), text.parse(), text.parse(), text.parse());
    Some(match parsed {
        (Ok(i), ..) => Val::I(i),
        (_, Ok(u), ..) => Val::U(u),
        (.., Ok(f), _) => float(f),
        (.., Ok(b)) => Val::Bool(b),
        _ => return None,
    })
}

/// tantivy's `NumericalValue::normalize` of a float.
fn float(f: f64) -> Val {
    match f {
        _ if f.fract() != 0.0 => Val::F(f),
        _ if f >= i64::MIN as f64 && f <= i64::MAX as f64 => Val::I(f as i64),
        _ if f >= 0.0 && f <= u64::MAX as f64 => Val::U(f as u64),
        _ => Val::F(f),
    }
}

impl Node {
    fn names(&self, out: &mut Vec<String>) {
        match self {
            Node::All => {}
            Node::Bool(must, should, not) => {
                for n in must.iter().chain(should).chain(not) {
                    n.names(out);
                }
            }
            Node::Leaf(name, ..) => {
                if !out.contains(name) {
                    out.push(name.clone());
                }
            }
        }
    }

    fn matches(&self, event: &Value) -> bool {
        let (name, kind, keys, pred) = match self {
            Node::All => return true,
            Node::Bool(must, should, not) => {
                let any = |nodes: &[Node]| nodes.iter().any(|n| n.matches(event));
                let all = |nodes: &[Node]| nodes.iter().all(|n| n.matches(event));
                return !any(not) && all(must) && (!must.is_empty() || any(should));
            }
            Node::Leaf(name, kind, keys, pred) => (name, *kind, keys, pred),
        };
        let Some(v) = event.get(name.as_str()) else {
            return false;
        };
        let mut phrase = Phrase::default();
        let found = walk(v, keys, &mut |v| match (pred, v) {
            (Pred::Exists, _) => has_value(v),
            (Pred::Phrase(..), Value::String(s))
                if kind == Kind::Text || indexed_date(s).is_none() =>
            {
                phrase.feed(pred, s);
                false
            }
            (Pred::Phrase(..), _) => false,
            _ => value_matches(v, kind, pred),
        });
        found || phrase.found(pred)
    }
}

/// A string of `fields` that tantivy indexes as a date.
fn indexed_date(s: &str) -> Option<i64> {
    s.starts_with(|c: char| c.is_ascii_digit())
        .then(|| nanos(s))?
}

/// One value against a test, read as the field's kind indexes it.
fn value_matches(v: &Value, kind: Kind, pred: &Pred) -> bool {
    let val = match (v, kind) {
        (Value::String(s), Kind::Date) => match date(s) {
            Ok(ns) => Val::Date(ns / MS * MS),
            Err(_) => return false,
        },
        (Value::String(s), Kind::Json) => match indexed_date(s) {
            Some(ns) => Val::Date(ns),
            None => return str_matches(s, kind, pred),
        },
        (Value::String(s), _) => return str_matches(s, kind, pred),
        (Value::Number(n), _) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Val::I(i),
            (_, Some(u), _) => Val::U(u),
            (_, _, f) => float(f.unwrap_or(f64::NAN)),
        },
        (Value::Bool(b), _) => Val::Bool(*b),
        _ => return false,
    };
    match pred {
        Pred::Is(Val::Date(d)) => matches!(val, Val::Date(ns) if ns / SEC * SEC == *d),
        Pred::Is(want) => val == *want,
        Pred::Range(lo, hi) => in_range(lo, hi, |b| compare(&val, b)),
        _ => false,
    }
}

fn str_matches(s: &str, kind: Kind, pred: &Pred) -> bool {
    let whole = |b: &Val| match b {
        Val::Str(b) => Some(s.cmp(b)),
        _ => None,
    };
    match pred {
        Pred::Word(w) => tokens(s).any(|(word, _)| eq_lower(word, w)),
        Pred::Is(Val::Str(want)) => s == want,
        Pred::Range(lo, hi) if kind == Kind::Text => tokens(s).any(|(word, _)| {
            in_range(lo, hi, |b| match b {
                Val::Str(b) => Some(lower(word).cmp(b.chars())),
                _ => None,
            })
        }),
        Pred::Range(lo, hi) => in_range(lo, hi, whole),
        _ => false,
    }
}

fn in_range(lo: &Bound<Val>, hi: &Bound<Val>, cmp: impl Fn(&Val) -> Option<Ordering>) -> bool {
    let ok = |b: &Bound<Val>, side| match b {
        Bound::Unbounded => true,
        Bound::Included(v) => cmp(v).is_some_and(|o| o == side || o.is_eq()),
        Bound::Excluded(v) => cmp(v) == Some(side),
    };
    ok(lo, Ordering::Greater) && ok(hi, Ordering::Less)
}

fn compare(v: &Val, bound: &Val) -> Option<Ordering> {
    let num = |v: &Val| match *v {
        Val::I(i) => Some((Some(i as i128), i as f64)),
        Val::U(u) => Some((Some(u as i128), u as f64)),
        Val::F(f) => Some((None, f)),
        _ => None,
    };
    match (v, bound, num(v), num(bound)) {
        (Val::Date(a), Val::Date(b), ..) => Some(a.cmp(b)),
        (.., Some((Some(a), _)), Some((Some(b), _))) => Some(a.cmp(&b)),
        (.., Some((_, x)), Some((_, y))) => x.partial_cmp(&y),
        _ => None,
    }
}

/// Calls `f` on the values at `keys` under `v`, arrays flattened.
fn walk<'a>(v: &'a Value, keys: &[String], f: &mut impl FnMut(&'a Value) -> bool) -> bool {
    match (v, keys.split_first()) {
        (Value::Array(items), _) => items.iter().any(|i| walk(i, keys, f)),
        (_, None) => f(v),
        (Value::Object(map), Some((key, rest))) => map.get(key).is_some_and(|c| walk(c, rest, f)),
        _ => false,
    }
}

fn has_value(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(items) => items.iter().any(has_value),
        Value::Object(map) => map.values().any(has_value),
        _ => true,
    }
}

/// Where a phrase's words are in the values of one field: positions run on
/// from one value to the next, one apart, as tantivy indexes them.
#[derive(Default)]
struct Phrase {
    /// (word of the phrase, its position less its offset in the phrase).
    hits: Vec<(usize, u32)>,
    next: u32,
}

impl Phrase {
    fn feed(&mut self, pred: &Pred, text: &str) {
        let Pred::Phrase(words, _, prefix) = pred else {
            return;
        };
        let (base, last, mut end) = (self.next, words.len() - 1, self.next);
        for (word, pos) in tokens(text) {
            end = end.max(base + pos + 1);
            for (i, (offset, w)) in words.iter().enumerate() {
                let hit = match *prefix && i == last {
                    true => lower(word).take(w.chars().count()).eq(w.chars()),
                    false => eq_lower(word, w),
                };
                if hit {
                    self.hits.push((i, base + pos + words[last].0 - offset));
                }
            }
        }
        self.next = end + 1;
    }

    fn found(&mut self, pred: &Pred) -> bool {
        let Pred::Phrase(words, slop, _) = pred else {
            return false;
        };
        self.hits.sort_unstable();
        let at = |i| self.hits.iter().filter(move |h| h.0 == i).map(|h| h.1);
        match slop {
            0 => at(0).any(|p| (1..words.len()).all(|i| self.hits.binary_search(&(i, p)).is_ok())),
            _ => at(0).any(|l| at(1).any(|r| l.abs_diff(r) <= *slop)),
        }
    }
}

#[cfg(test)]
mod tests;
