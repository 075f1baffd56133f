//! Masks sensitive values in chosen fields of each event.
//!
//! What it masks, each kind with its own switch:
//!
//! - `emails`: e-mail addresses (`jane.doe+tag@example.co.uk`; ASCII only);
//! - `ips`: IPv4 addresses whose four parts are each at most 255 (so
//!   `999.1.1.1` and version strings like `1.2.3.4.5` are left alone), and
//!   IPv6 addresses in any written form (`::1`, `fe80::1%eth0`,
//!   `2001:db8:0:0:0:0:0:1`, `::ffff:10.0.0.1`, `[::1]:443`);
//! - `cards`: payment card numbers of 13 to 19 digits, written together or
//!   in groups split by single spaces or by single dashes, that pass the
//!   Luhn check (a 16-digit number failing it is left alone);
//! - `tokens`: the token after `Bearer` (`Authorization: Bearer abc.123`
//!   becomes `Authorization: Bearer [REDACTED]`; the word is kept), and
//!   JWTs anywhere (`eyJ….eyJ….…`).
//!
//! Config:
//!
//! - `fields`: comma-separated dot paths of the fields to scan (default
//!   `message`). A text event's line is its `message`; other paths do not
//!   apply to text events. In a JSON event `message` falls back to `msg`
//!   when there is no `message` (as the gateway does); a path that holds an
//!   integer is scanned as its decimal text (a card number sent as a
//!   number), and one that holds an object or array has every string and
//!   integer inside it scanned.
//! - `mask`: what replaces each match (default `[REDACTED]`).
//! - `emails`, `ips`, `cards`, `tokens`: `true` or `false` (also `yes`/`no`,
//!   `on`/`off`, `1`/`0`), all `true` by default.
//!
//! Answers `Keep` when nothing matched, else `Edits` setting only the
//! fields that changed (a string stays a string; a number that held a
//! match becomes a string; an object or array is set whole). Counts the
//! values masked in the counter `redacted` (once per batch).
//!
//! Limits: matching is lexical, so it can over-mask (a dotted quad that is
//! really a version, `Chrome/120.0.0.0`) and under-mask (card numbers with
//! mixed separators, non-ASCII e-mail addresses). Card numbers must start
//! with 2 to 9: 0 and 1 are not card-network prefixes, and every Unix time
//! in milliseconds, microseconds or nanoseconds until 2033 starts with 1.

use std::net::Ipv6Addr;

use logway_filter_sdk::{
    BatchContext, Config, Event, EventFormat, Filter, Value, Verdict, counter, export_filter, set,
};
use regex::Regex;
use serde_json::{Map, Value as Json};

pub const DEFAULT_MASK: &str = "[REDACTED]";

/// A byte range of a string to mask.
type Span = (usize, usize);

/// The kinds of value to mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kinds {
    pub emails: bool,
    pub ips: bool,
    pub cards: bool,
    pub tokens: bool,
}

impl Kinds {
    pub const ALL: Kinds = Kinds {
        emails: true,
        ips: true,
        cards: true,
        tokens: true,
    };
}

// Candidate patterns; what a regex cannot say well (octet ranges, IPv6
// grammar, Luhn, word boundaries) is checked in code. ASCII classes only,
// so the regex crate needs no Unicode tables.
const EMAIL: &str = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}";
const IPV4: &str = r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}";
// Two to seven `h:` groups, then an IPv4 tail or a last group (the IPv4
// alternative first, so `::ffff:1.2.3.4` is one match), then a zone.
const IPV6: &str = r"(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|[0-9A-Fa-f]{0,4})(?:%[0-9A-Za-z_.-]+)?";
// The auth scheme is case-insensitive; spelled out as classes because
// `(?i)` needs the Unicode case tables.
const BEARER: &str = r"[Bb][Ee][Aa][Rr][Ee][Rr][ \t]+[A-Za-z0-9._~+/=-]+";
const JWT: &str = r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*";

/// Finds and masks sensitive values in text. Built once; its regexes are
/// compiled in [`Redactor::new`].
pub struct Redactor {
    mask: String,
    cards: bool,
    email: Option<Regex>,
    ipv4: Option<Regex>,
    ipv6: Option<Regex>,
    bearer: Option<Regex>,
    jwt: Option<Regex>,
}

fn compile(on: bool, pattern: &str) -> Result<Option<Regex>, String> {
    if !on {
        return Ok(None);
    }
    Regex::new(pattern)
        .map(Some)
        .map_err(|e| format!("internal pattern does not compile: {e}"))
}

impl Redactor {
    pub fn new(kinds: Kinds, mask: &str) -> Result<Redactor, String> {
        Ok(Redactor {
            mask: mask.to_string(),
            cards: kinds.cards,
            email: compile(kinds.emails, EMAIL)?,
            ipv4: compile(kinds.ips, IPV4)?,
            ipv6: compile(kinds.ips, IPV6)?,
            bearer: compile(kinds.tokens, BEARER)?,
            jwt: compile(kinds.tokens, JWT)?,
        })
    }

    /// `text` with every match masked and the number of masks, or `None`
    /// when nothing matched (then nothing was allocated).
    pub fn redact(&self, text: &str) -> Option<(String, u64)> {
        let mut spans = Vec::new();
        self.find(text, &mut spans);
        if spans.is_empty() {
            return None;
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut count = 0;
        let mut done = 0; // bytes of `text` already written or masked
        let mut current: Option<Span> = None;
        // Overlapping matches (a JWT after `Bearer`, the IPv4 tail of an
        // IPv6 address) become one mask.
        for (start, end) in spans {
            match &mut current {
                Some((_, e)) if start < *e => *e = (*e).max(end),
                _ => {
                    if let Some(span) = current.take() {
                        self.push_masked(text, span, &mut done, &mut out);
                        count += 1;
                    }
                    current = Some((start, end));
                }
            }
        }
        if let Some(span) = current {
            self.push_masked(text, span, &mut done, &mut out);
            count += 1;
        }
        out.push_str(text.get(done..).unwrap_or_default());
        Some((out, count))
    }

    fn push_masked(&self, text: &str, (start, end): Span, done: &mut usize, out: &mut String) {
        // Spans are at ASCII bytes found by the regexes or the card scan,
        // so these are char boundaries; `get` keeps a broken invariant from
        // panicking.
        out.push_str(text.get(*done..start).unwrap_or_default());
        out.push_str(&self.mask);
        *done = end;
    }

    /// Pushes the byte ranges to mask, in no particular order.
    fn find(&self, text: &str, spans: &mut Vec<Span>) {
        let bytes = text.as_bytes();
        // Each kind needs a character the cheap `contains` checks first.
        if let Some(re) = self.email.as_ref().filter(|_| text.contains('@')) {
            spans.extend(re.find_iter(text).map(|m| (m.start(), m.end())));
        }
        if let Some(re) = self.ipv4.as_ref().filter(|_| text.contains('.')) {
            for m in re.find_iter(text) {
                if ipv4_bounded(bytes, m.start(), m.end()) && valid_ipv4(m.as_str()) {
                    spans.push((m.start(), m.end()));
                }
            }
        }
        if let Some(re) = self.ipv6.as_ref().filter(|_| text.contains(':')) {
            for m in re.find_iter(text) {
                if let Some(end) = ipv6_at(text, m.start(), m.end()) {
                    spans.push((m.start(), end));
                }
            }
        }
        if self.cards {
            card_spans(bytes, spans);
        }
        if let Some(re) = &self.bearer {
            for m in re.find_iter(text) {
                if let Some(span) = bearer_token(bytes, m.start(), m.end()) {
                    spans.push(span);
                }
            }
        }
        if let Some(re) = &self.jwt {
            for m in re.find_iter(text) {
                let jwt_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
                if !before(bytes, m.start()).is_some_and(jwt_char) {
                    spans.push((m.start(), m.end()));
                }
            }
        }
    }

    /// Masks matches inside a JSON value in place; the number of masks.
    pub fn redact_json(&self, value: &mut Json) -> u64 {
        match value {
            Json::String(s) => match self.redact(s) {
                Some((masked, n)) => {
                    *s = masked;
                    n
                }
                None => 0,
            },
            // Integers only: a float cannot hold a whole card number or IP,
            // and this spares a conversion per float.
            Json::Number(n) if !n.is_f64() => match self.redact(&n.to_string()) {
                Some((masked, count)) => {
                    *value = Json::String(masked);
                    count
                }
                None => 0,
            },
            Json::Array(items) => items.iter_mut().map(|v| self.redact_json(v)).sum(),
            Json::Object(obj) => obj.values_mut().map(|v| self.redact_json(v)).sum(),
            _ => 0,
        }
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The byte before `i`, if any.
fn before(bytes: &[u8], i: usize) -> Option<u8> {
    i.checked_sub(1).and_then(|j| bytes.get(j)).copied()
}

fn digit_at(bytes: &[u8], i: usize) -> bool {
    bytes.get(i).is_some_and(u8::is_ascii_digit)
}

/// Whether `s` is a dotted-quad IPv4 address (parts of 1 to 3 digits, each
/// at most 255; zero-padded parts such as `010` are accepted, as logs write
/// them).
pub fn valid_ipv4(s: &str) -> bool {
    let mut parts = 0;
    for part in s.split('.') {
        parts += 1;
        let ok = (1..=3).contains(&part.len())
            && part.bytes().all(|b| b.is_ascii_digit())
            && part.parse::<u16>().is_ok_and(|n| n <= 255);
        if !ok || parts > 4 {
            return false;
        }
    }
    parts == 4
}

/// A dotted quad inside a longer dotted or alphanumeric run (`1.2.3.4.5`,
/// `v1.2.3.4`) is not an address.
fn ipv4_bounded(bytes: &[u8], start: usize, end: usize) -> bool {
    let before_ok = !before(bytes, start).is_some_and(|b| is_word(b) || b == b'.');
    let after_ok = match bytes.get(end) {
        None => true,
        Some(&b) => !(is_word(b) || (b == b'.' && digit_at(bytes, end + 1))),
    };
    before_ok && after_ok
}

/// Whether `s` is an IPv6 address, with an optional `%zone`. Needs a
/// decimal digit, so `::` and hex-only words joined by `::` (`db::add`, a
/// code path) are not taken for addresses.
pub fn valid_ipv6(s: &str) -> bool {
    let addr = s.split_once('%').map_or(s, |(addr, _zone)| addr);
    addr.bytes().any(|b| b.is_ascii_digit()) && addr.parse::<Ipv6Addr>().is_ok()
}

/// The end of the IPv6 address at a candidate match, if it is one.
fn ipv6_at(text: &str, start: usize, end: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    if before(bytes, start).is_some_and(|b| is_word(b) || b == b':' || b == b'.') {
        return None;
    }
    // Followed by more of a word, or by more groups than an address has
    // (`1:2:3:4:5:6:7:8:9`).
    let more_groups = |i: usize| {
        bytes
            .get(i)
            .is_some_and(|&b| b.is_ascii_hexdigit() || b == b':')
    };
    if bytes
        .get(end)
        .is_some_and(|&b| is_word(b) || (b == b':' && more_groups(end + 1)))
    {
        return None;
    }
    let mut end = end;
    // A zone does not end with a sentence's full stop.
    if text[start..end].contains('%') {
        while end > start && bytes[end - 1] == b'.' {
            end -= 1;
        }
    }
    let candidate = text.get(start..end)?;
    if valid_ipv6(candidate) {
        return Some(end);
    }
    // `fe80::1: connection refused`: the regex took the colon after the
    // address as the start of another group.
    if candidate.ends_with(':') && !candidate.ends_with("::") {
        let shorter = &candidate[..candidate.len() - 1];
        if valid_ipv6(shorter) {
            return Some(end - 1);
        }
    }
    None
}

/// The token of a `Bearer <token>` match: kept when it is a plain
/// lowercase word, which is prose (`Bearer token expired`) rather than a
/// credential.
fn bearer_token(bytes: &[u8], start: usize, end: usize) -> Option<Span> {
    if before(bytes, start).is_some_and(is_word) {
        return None; // `XBearer`, not the scheme
    }
    let mut token_start = start + "bearer".len();
    while bytes
        .get(token_start)
        .is_some_and(|&b| b == b' ' || b == b'\t')
    {
        token_start += 1;
    }
    let mut token_end = end;
    // A full stop after the token ends the sentence.
    while token_end > token_start && bytes[token_end - 1] == b'.' {
        token_end -= 1;
    }
    let token = bytes.get(token_start..token_end)?;
    if token.is_empty() || token.iter().all(u8::is_ascii_lowercase) {
        return None;
    }
    Some((token_start, token_end))
}

/// Whether the digits of `s` (other bytes skipped) pass the Luhn check.
pub fn luhn(s: &[u8]) -> bool {
    let mut sum = 0u32;
    let mut digits = 0;
    for &b in s.iter().rev().filter(|b| b.is_ascii_digit()) {
        let mut d = u32::from(b - b'0');
        if digits % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        digits += 1;
    }
    digits > 0 && sum.is_multiple_of(10)
}

/// Whether a run of digit groups (separators included) is a card number.
fn is_card(window: &[u8]) -> bool {
    // See the module docs for why 0 and 1 are not taken as card prefixes.
    window.first().is_some_and(|b| (b'2'..=b'9').contains(b)) && luhn(window)
}

/// Pushes the card numbers of `bytes`. A sequence is a run of digit groups
/// joined by single spaces or dashes; a card is a stretch of whole groups
/// of it with one kind of separator (so `2024-01-15 4111 1111 1111 1111`
/// yields the card, not a date-and-card mix), 13 to 19 digits, Luhn-valid.
fn card_spans(bytes: &[u8], spans: &mut Vec<Span>) {
    let len = bytes.len();
    let mut i = 0;
    while i < len {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let mut digits = 0;
        loop {
            while i < len && bytes[i].is_ascii_digit() {
                i += 1;
                digits += 1;
            }
            if i + 1 < len && matches!(bytes[i], b' ' | b'-') && bytes[i + 1].is_ascii_digit() {
                i += 1;
            } else {
                break;
            }
        }
        // Part of a word (`id4111…`) or of a decimal number (`0.4111…`,
        // `1,4111…`): not a card.
        let decimal_mark = |b: u8| b == b'.' || b == b',';
        let glued_before = before(bytes, start).is_some_and(|b| {
            is_word(b) || (decimal_mark(b) && start >= 2 && digit_at(bytes, start - 2))
        });
        let glued_after = bytes
            .get(i)
            .is_some_and(|&b| is_word(b) || (decimal_mark(b) && digit_at(bytes, i + 1)));
        if digits >= 13 && !glued_before && !glued_after {
            cards_in_sequence(bytes, start, i, spans);
        }
    }
}

/// Card numbers among the groups of `bytes[start..end]` (digits, and
/// single separators each followed by a digit): from each group, left to
/// right, the longest valid stretch.
fn cards_in_sequence(bytes: &[u8], start: usize, end: usize, spans: &mut Vec<Span>) {
    let mut group = start;
    while group < end {
        let mut best = None;
        let mut k = group;
        let mut digits = 0;
        let mut separator = None;
        loop {
            while k < end && bytes[k].is_ascii_digit() {
                k += 1;
                digits += 1;
            }
            if digits > 19 {
                break;
            }
            if digits >= 13 && is_card(&bytes[group..k]) {
                best = Some(k);
            }
            if k >= end {
                break;
            }
            match separator {
                None => separator = Some(bytes[k]),
                Some(s) if s != bytes[k] => break,
                Some(_) => {}
            }
            k += 1;
        }
        match best {
            Some(card_end) => {
                spans.push((group, card_end));
                group = card_end + 1; // past the separator, if any
            }
            None => {
                while group < end && bytes[group].is_ascii_digit() {
                    group += 1;
                }
                group += 1;
            }
        }
    }
}

/// The value at a dot path of a JSON object.
fn lookup_mut<'a>(obj: &'a mut Map<String, Json>, path: &str) -> Option<&'a mut Json> {
    let mut parts = path.split('.');
    let mut value = obj.get_mut(parts.next()?)?;
    for part in parts {
        value = value.as_object_mut()?.get_mut(part)?;
    }
    Some(value)
}

/// A switch: `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`.
fn flag(config: &Config, key: &str) -> Result<bool, String> {
    let Some(raw) = config.get(key) else {
        return Ok(true);
    };
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!(
            "config `{key}`: expected true or false, got `{raw}`"
        )),
    }
}

/// The filter: which fields to scan and the [`Redactor`] that scans them.
pub struct Redact {
    fields: Vec<String>,
    /// Whether `fields` names `message`, the line of a text event.
    text_message: bool,
    redactor: Redactor,
}

impl Redact {
    /// A masked JSON value as an edit's value.
    fn edit_value(&self, value: Json) -> Value {
        match value {
            Json::String(s) => Value::Text(s),
            other => match serde_json::to_string(&other) {
                Ok(json) => Value::Json(json),
                // Cannot happen for a parsed value; if it did, mask the
                // whole field rather than leak it.
                Err(_) => Value::Text(self.redactor.mask.clone()),
            },
        }
    }

    /// What to do with one event, and how many values were masked.
    pub fn redact_event(&self, event: &Event) -> (Verdict, u64) {
        match event.format {
            EventFormat::Text => {
                let Some(line) = event.as_str().filter(|_| self.text_message) else {
                    return (Verdict::Keep, 0);
                };
                match self.redactor.redact(line) {
                    Some((masked, n)) => (Verdict::Edits(vec![set("message", masked)]), n),
                    None => (Verdict::Keep, 0),
                }
            }
            // Top-level fields only (the usual case): read just those fields
            // instead of building the whole object.
            EventFormat::Json if self.fields.iter().all(|f| !f.contains('.')) => {
                let mut edits = Vec::new();
                let mut total = 0;
                for field in &self.fields {
                    let mut path = field.as_str();
                    let mut value = event.field(path);
                    if value.is_none() && path == "message" {
                        path = "msg";
                        value = event.field(path);
                    }
                    let Some(mut value) = value else { continue };
                    let n = self.redactor.redact_json(&mut value);
                    if n > 0 {
                        total += n;
                        edits.push(set(path, self.edit_value(value)));
                    }
                }
                if edits.is_empty() {
                    (Verdict::Keep, 0)
                } else {
                    (Verdict::Edits(edits), total)
                }
            }
            EventFormat::Json => {
                let Some(mut obj) = event.json() else {
                    return (Verdict::Keep, 0);
                };
                let mut edits = Vec::new();
                let mut total = 0;
                for field in &self.fields {
                    let mut path = field.as_str();
                    if path == "message" && !obj.contains_key("message") {
                        path = "msg";
                    }
                    let Some(value) = lookup_mut(&mut obj, path) else {
                        continue;
                    };
                    let n = self.redactor.redact_json(value);
                    if n == 0 {
                        continue;
                    }
                    total += n;
                    edits.push(set(path, self.edit_value(std::mem::take(value))));
                }
                if edits.is_empty() {
                    (Verdict::Keep, 0)
                } else {
                    (Verdict::Edits(edits), total)
                }
            }
        }
    }
}

impl Filter for Redact {
    const DROPS_EVENTS: bool = false;

    fn new(config: &Config) -> Result<Self, String> {
        let mut fields = config.list("fields");
        if config.get("fields").is_some() && fields.is_empty() {
            return Err("config `fields`: names no field".into());
        }
        if fields.is_empty() {
            fields.push("message".into());
        }
        if let Some(bad) = fields.iter().find(|f| f.split('.').any(str::is_empty)) {
            return Err(format!("config `fields`: `{bad}` is not a dot path"));
        }
        let mut seen = Vec::with_capacity(fields.len());
        fields.retain(|f| {
            let new = !seen.contains(f);
            seen.push(f.clone());
            new
        });
        let kinds = Kinds {
            emails: flag(config, "emails")?,
            ips: flag(config, "ips")?,
            cards: flag(config, "cards")?,
            tokens: flag(config, "tokens")?,
        };
        let mask = config.get("mask").unwrap_or(DEFAULT_MASK);
        Ok(Redact {
            text_message: fields.iter().any(|f| f == "message"),
            fields,
            redactor: Redactor::new(kinds, mask)?,
        })
    }

    fn process(&mut self, _ctx: &BatchContext, event: &Event) -> Verdict {
        let (verdict, n) = self.redact_event(event);
        if n > 0 {
            counter("redacted", n);
        }
        verdict
    }

    /// One counter call per batch: host calls are budgeted per batch.
    fn process_batch(&mut self, _ctx: &BatchContext, events: &[Event]) -> Vec<Verdict> {
        let mut total = 0;
        let verdicts = events
            .iter()
            .map(|event| {
                let (verdict, n) = self.redact_event(event);
                total += n;
                verdict
            })
            .collect();
        if total > 0 {
            counter("redacted", total);
        }
        verdicts
    }
}

export_filter!(Redact);

#[cfg(test)]
mod tests;
