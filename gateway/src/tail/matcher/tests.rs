//! The matcher against tantivy: the same events, the same queries, the
//! same answers, and the known differences pinned.

use serde_json::{Value, json};
use tantivy::collector::DocSetCollector;
use tantivy::query::QueryParser;
use tantivy::tokenizer::TokenizerManager;
use tantivy::{Index, IndexReader};

use super::Matcher;
use crate::hot::schema::HotSchema;

/// Stored events made of these parts, each its index as id.
fn events(parts: Vec<Value>) -> Vec<Value> {
    let base = json!({"type": "web_logs", "timestamp": "2026-11-21T09:59:58Z",
        "received_at": "2026-11-21T10:00:00.123Z"});
    let event = |(i, part): (usize, Value)| {
        let mut e = base.clone();
        e["id"] = i.to_string().into();
        e.as_object_mut()
            .unwrap()
            .extend(part.as_object().unwrap().clone());
        e
    };
    parts.into_iter().enumerate().map(event).collect()
}

fn varied() -> Vec<Value> {
    let long = format!("start {} end", "L".repeat(45));
    events(vec![
        json!({"level": "error", "service": "checkout", "host": "web-1", "request_id": "abc",
            "message": "payment failed", "fields": {"user": {"id": 42, "name": "Ana"},
            "status": 500, "tags": ["a", "b"]}}),
        json!({"level": "info", "service": "Checkout", "message": "Payment succeeded",
            "timestamp": "2026-11-20T08:00:00Z", "fields": {"user": {"id": 7}, "ok": true}}),
        json!({"level": "ERROR", "host": "WEB-1", "message": "connection reset",
            "timestamp": "2026-11-19T23:59:59.999Z", "fields": {"status": "500", "ok": false}}),
        json!({"message": "GET /api/v1/users?id=42 HTTP/1.1", "fields": {"latency_ms": 12.5,
            "http": {"method": "GET", "status": 404}}}),
        json!({"message": "Ünïcödé straße ΣΊΣΥΦΟΣ", "fields": {"city": "Zürich", "e": "🚀 go"}}),
        json!({"message": "foo-bar baz_qux", "fields": {"code": "foo-bar", "empty": "", "no": null}}),
        json!({"message": long, "outcome": "ok", "reason": "Rate limited", "fields": {}}),
        json!({"message": "a b c d e", "fields": {"at": "2026-11-21T09:00:00.900Z", "n": -5,
            "f": 1.0, "g": 2.5, "big": 18446744073709551615u64}}),
        json!({"fields": {"tags": ["Alpha", "beta gamma"], "nested": [{"k": "v1"}, {"k": "v2"}]}}),
        json!({"message": "error error", "level": "warn", "fields": {"a.b": "dotted",
            "a": {"b": "nested"}, "": "empty key", "user": {"id": "42"}}}),
        json!({"message": "numbers 500", "fields": {"codes": [500, 404], "ok": "true",
            "v": ["a", 5, true, {"w": "deep"}], "ts": "2026-11-21T10:00:00+01:00"}}),
        json!({"message": "heartbeat", "timestamp": "2026-11-22T00:00:00Z"}),
    ])
}

/// The hot index of the events, searched as search parses a query.
struct Search(HotSchema, IndexReader);

impl Search {
    fn new(events: &[Value]) -> Search {
        let s = HotSchema::new();
        let index = Index::create_in_ram(s.schema.clone());
        let mut w = index.writer_with_num_threads(1, 15_000_000).unwrap();
        for e in events {
            w.add_document(s.document(e.to_string().as_bytes()).unwrap())
                .unwrap();
        }
        w.commit().unwrap();
        Search(s, index.reader().unwrap())
    }

    /// The events found, by index (one segment: doc ids are indexes).
    fn found(&self, query: &str) -> Result<Vec<usize>, String> {
        let fields = vec![self.0.message, self.0.fields];
        let mut p = QueryParser::new(self.0.schema.clone(), fields, TokenizerManager::default());
        p.set_conjunction_by_default();
        let q = p.parse_query(query).map_err(|e| e.to_string())?;
        let docs = self
            .1
            .searcher()
            .search(&q, &DocSetCollector)
            .map_err(|e| e.to_string())?;
        let mut found: Vec<usize> = docs.iter().map(|d| d.doc_id as usize).collect();
        found.sort();
        Ok(found)
    }
}

fn tail(events: &[Value], query: &str) -> Result<Vec<usize>, String> {
    let m = Matcher::parse(query)?;
    let names = m.names();
    let found: Vec<usize> = (0..events.len())
        .filter(|&i| m.matches(&events[i]))
        .collect();
    // The tail parses only the members the query names: same answer.
    let pruned: Vec<usize> = (0..events.len())
        .filter(|&i| {
            let stored = serde_json::to_vec(&events[i]).unwrap();
            m.matches(&crate::tail::pruned::parse(&stored, &names).unwrap())
        })
        .collect();
    assert_eq!(found, pruned, "{query}: whole event against pruned");
    Ok(found)
}

/// Queries search and the tail answer alike (`;` between them), or
/// both refuse (the last two lines).
const SAME: &str = r#"
    * ; payment ; PAYMENT failed ; payment OR heartbeat ; Ana ; a ; straße ; STRASSE
    σίσυφοσ ; ΣΊΣΥΦΟΣ ; 🚀 ; foo-bar ; foo_bar ; "foo bar" ; foo* ; pay* ; start ; empty
    "start end" ; "start end"~1 ; "failed payment"~2 ; "b a"~1 ; "payment fa"* ; "a b c"
    "a c" ; "error error" ; "..." ; payment "..." ; 'payment failed' ; fields:key
    level:error ; level:ERROR ; level:Error ; host:web-1 ; service:Checkout ; id:3
    outcome:ok ; reason:rate ; reason:"rate limited" ; message:payment ; user.name:ana
    fields.user.name:ANA ; user.id:42 ; user.id:"42" ; status:500 ; http.status:404
    http.method:get ; latency_ms:12.5 ; fields.f:1 ; fields.g:2.50 ; n:-5 ; ok:true
    ok:false ; fields.big:18446744073709551615 ; tags:alpha ; tags:a ; tags:"alpha beta"
    tags:"alpha beta"~1 ; nested.k:"v1 v2"~1 ; a.b:dotted ; a\.b:dotted ; a.b:nested
    v:5 ; v:true ; v.w:deep ; at:"2026-11-21T09:00:00Z" ; ts:"2026-11-21T09:00:00Z"
    e:go ; tenant:acme ; codes:404 ; timestamp:"2026-11-19T23:59:59Z"
    timestamp:[2026-11-20T00:00:00Z TO *] ; timestamp:<2026-11-21T00:00:00Z
    timestamp:{2026-11-19T23:59:59.999Z TO 2026-11-21T00:00:00Z] ; fields.status:>=500
    fields.status:[200 TO 404] ; fields.n:<0 ; fields.g:[2.5 TO 3.5] ; fields.big:>1000
    fields.codes:{404 TO 500} ; fields.user.id:[40 TO 50] ; fields.v:>=5 ; fields.city:>Z
    fields.v:[a TO a] ; fields.code:[foo TO foo-bar] ; fields.at:>=2026-11-21T09:00:00.5Z
    fields.x:[* TO *] ; payment fields.x:[* TO *] ; level:[error TO info] ; reason:>=r
    host:[web TO web-2} ; message:[pa TO pb] ; level:* ; outcome:* ; fields:* ; level.x:*
    fields.user:* ; fields.empty:* ; fields.no:* ; fields.a\.b:* ; level:IN [error warn]
    level:IN [] ; fields.codes:IN [404 1] ; fields.code:IN [Foo] ; id:IN [1 2 99]
    fields.tags:IN [alpha Beta] ; fields.code:IN [foo BAR]
    fields.code:IN [foo-bar] ; message:IN [payment heartbeat] ; fields.ok:IN [true]
    timestamp:IN ["2026-11-19T23:59:59Z"] ; payment AND failed ; payment -failed
    payment AND NOT failed ; * -payment ; (payment OR connection) AND -level:info
    level:(error OR warn) ; level:(error warn) ; payment OR -failed ; (-level:info) payment
    payment^2 OR heartbeat ; a AND b OR c ; (a OR b) AND (c OR d) ; +level:error +payment
    -payment -heartbeat ; NOT payment ; "..." "!!!" ; status:>=500 ; user.id:* ; message:*
    id:* ; _source:x ; level.x:a ; timestamp:x ; message:IN [foo-bar] ; "payment"* ; ( ; /a/
"#;

#[test]
fn matches_what_search_finds() {
    let events = varied();
    let search = Search::new(&events);
    for q in SAME
        .split([';', '\n'])
        .map(str::trim)
        .filter(|q| !q.is_empty())
    {
        match (search.found(q), tail(&events, q)) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{q}"),
            (Err(_), Err(_)) => {}
            (a, b) => panic!("{q}: search {a:?}, tail {b:?}"),
        }
        // The bytes the tail's prefilter requires are in every match.
        if let Ok(m) = Matcher::parse(q)
            && let Some(required) = m.required_bytes()
        {
            for e in events.iter().filter(|e| m.matches(e)) {
                let text = serde_json::to_string(e).unwrap();
                assert!(
                    memchr::memmem::find(text.as_bytes(), &required).is_some(),
                    "{q}: {text} lacks {:?}",
                    String::from_utf8_lossy(&required)
                );
            }
        }
    }
}

#[test]
fn differences_from_search_are_known() {
    let search = Search::new(&varied());
    // Slop on three or more words: tantivy walks them rarest first.
    assert_eq!(search.found("\"a c e\"~2"), Ok(vec![7]));
    assert!(Matcher::parse("\"a c e\"~2").is_err());
    // Range bounds of two types: nothing when the path has no numbers
    // (the type of the first bound), a panic in tantivy 0.27 when it has.
    assert_eq!(search.found("fields.x:[1 TO abc]"), Ok(vec![]));
    assert!(Matcher::parse("fields.x:[1 TO abc]").is_err());
    // A phrase prefix: tantivy takes the segment's first 50 words.
    let words = (0..60).map(|i| json!({"message": format!("payment zz{i:02}")}));
    let many = events(words.collect());
    let prefix = "\"payment zz\"*";
    assert_eq!(Search::new(&many).found(prefix).map(|f| f.len()), Ok(50));
    assert_eq!(tail(&many, prefix).map(|f| f.len()), Ok(60));
}

#[test]
fn required_bytes_are_only_what_a_match_must_hold() {
    let req = |q: &str| {
        Matcher::parse(q)
            .unwrap()
            .required_bytes()
            .map(|b| String::from_utf8(b).unwrap())
    };
    assert_eq!(req("level:error").as_deref(), Some("\"error\""));
    assert_eq!(
        req("level:error AND service:checkout-api").as_deref(),
        Some("\"checkout-api\"")
    );
    assert_eq!(
        req("level:error AND -service:x").as_deref(),
        Some("\"error\"")
    );
    assert_eq!(req("fields.status:500").as_deref(), Some("500"));
    assert_eq!(req("http.status:404").as_deref(), Some("404"));
    // Nothing that a match may lack: either side of OR, words (any case),
    // nested words and fractions (many spellings), negations, escapes.
    for q in [
        "level:error OR level:warn",
        "timeout",
        "user.id:jane",
        "fields.n:-5",
        "fields.n:2.5",
        "* -level:error",
        "service:\"a b\"",
        "*",
    ] {
        assert_eq!(req(q), None, "{q}");
    }
}
