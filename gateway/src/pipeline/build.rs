//! Items → the route's filter chain → stored events, with one outcome per
//! item. Blocking (filters run here): call it from a blocking thread.

use std::borrow::Cow;

use time::OffsetDateTime;

use super::item::{Item, Outcome};

/// Errors a batch lists at most, in order (all are counted, and each
/// item's outcome has its own).
pub const MAX_REPORTED_ERRORS: usize = 100;
use crate::batch::TypeRun;
use crate::event::{self, EventContext};
use crate::filter;

/// A batch's stored events and what became of each item.
#[derive(Debug)]
pub struct Built {
    /// Stored events (rejected and dead-lettered ones included), grouped by
    /// log type when filters retyped some (see `types`).
    pub events: Vec<Vec<u8>>,
    /// One per item, in the order the items came.
    pub outcomes: Vec<Outcome>,
    pub counts: Counts,
    /// The first [`MAX_REPORTED_ERRORS`] rejected lines and dead letters,
    /// in the order they were met: (line, reason).
    pub errors: Vec<(usize, String)>,
    /// Rejected lines and dead letters, all of them.
    pub error_count: usize,
    /// Metric label of each rejected or dead-lettered event.
    pub reject_reasons: Vec<&'static str>,
    /// Groups by log type when filters retyped some events (see [`crate::batch`]).
    pub types: Vec<TypeRun>,
    pub received: OffsetDateTime,
}

/// What a batch's answer counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Items that decoded (what filters then did is counted below).
    pub accepted: usize,
    /// Rejected events (bad items, and events with too many fields).
    pub rejected: usize,
    /// Events filters dropped on purpose.
    pub dropped: usize,
    /// Events filters failed on, stored as dead letters.
    pub dead_lettered: usize,
}

/// Collects a batch's stored events, outcomes and counts.
struct Builder<'c> {
    ctx: &'c EventContext<'c>,
    max_line: usize,
    /// Each item's line, ascending, to find an item by the line an event carries.
    lines: Vec<usize>,
    events: Vec<Vec<u8>>,
    outcomes: Vec<Outcome>,
    counts: Counts,
    errors: Vec<(usize, String)>,
    error_count: usize,
    reject_reasons: Vec<&'static str>,
    /// Ids chosen for items, by line ascending; the first event built from
    /// an item takes its id.
    ids: Vec<(usize, Option<String>)>,
}

impl<'c> Builder<'c> {
    fn new(
        ctx: &'c EventContext<'c>,
        max_line: usize,
        items: &[(usize, Item<'_>)],
        ids: Vec<(usize, String)>,
    ) -> Self {
        Builder {
            ids: ids.into_iter().map(|(l, id)| (l, Some(id))).collect(),
            ctx,
            max_line,
            lines: items.iter().map(|(line, _)| *line).collect(),
            events: Vec::with_capacity(items.len()),
            outcomes: vec![Outcome::Stored; items.len()],
            counts: Counts::default(),
            errors: Vec::new(),
            error_count: 0,
            reject_reasons: Vec::new(),
        }
    }

    fn report(&mut self, line: usize, reason: String) {
        self.error_count += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push((line, reason));
        }
    }

    /// Records what became of the item of `line`.
    fn outcome(&mut self, line: usize, outcome: Outcome) {
        if let Ok(i) = self.lines.binary_search(&line) {
            self.outcomes[i].merge(outcome);
        }
    }

    /// An item the client got wrong: kept as a rejected event.
    fn reject(&mut self, raw: &[u8], line: usize, kind: &'static str, reason: String) {
        self.events
            .push(event::rejected(raw, line, &reason, self.max_line, self.ctx));
        self.counts.rejected += 1;
        self.reject_reasons.push(kind);
        self.outcome(
            line,
            Outcome::Rejected {
                reason: reason.clone(),
            },
        );
        self.report(line, reason);
    }

    /// An event a filter failed on: kept as a dead letter.
    fn dead_letter(&mut self, d: filter::DeadLetter) {
        self.events.push(event::dead_letter(
            &d.raw,
            d.line,
            &d.filter,
            &d.reason,
            self.max_line,
            self.ctx,
        ));
        self.counts.dead_lettered += 1;
        self.reject_reasons.push("filter_failed");
        self.outcome(
            d.line,
            Outcome::DeadLetter {
                reason: d.reason.clone(),
            },
        );
        self.report(d.line, d.reason);
    }

    /// A decoded object, unless it has too many fields.
    /// The id chosen for the item of `line`, the first time it is asked.
    fn take_id(&mut self, line: usize) -> Option<String> {
        let i = self.ids.binary_search_by_key(&line, |(l, _)| *l).ok()?;
        self.ids[i].1.take()
    }

    /// An object's text ([`Item::Json`], [`Item::Lined`]): the stored
    /// event straight from the text when possible, else from a map (the id
    /// goes along either way).
    fn json(&mut self, item: Item<'_>, line: usize, ctx: &EventContext, id: Option<String>) {
        let text = item.object_text().expect("an object's text");
        let id = match event::from_json(text, ctx, id) {
            Ok(stored) => {
                self.events.push(stored);
                self.counts.accepted += 1;
                return;
            }
            Err(id) => id,
        };
        match item.parse_text() {
            Item::Object(obj, _) => {
                if self.object_with_id(obj, line, ctx, id) {
                    self.counts.accepted += 1;
                }
            }
            Item::Bad { raw, reason, kind } => self.reject(&raw, line, kind, reason),
            _ => unreachable!("a JSON text is an object or bad"),
        }
    }

    fn object(
        &mut self,
        obj: serde_json::Map<String, serde_json::Value>,
        line: usize,
        ctx: &EventContext,
    ) -> bool {
        let id = self.take_id(line);
        self.object_with_id(obj, line, ctx, id)
    }

    fn object_with_id(
        &mut self,
        obj: serde_json::Map<String, serde_json::Value>,
        line: usize,
        ctx: &EventContext,
        id: Option<String>,
    ) -> bool {
        match event::check_fields(&obj, ctx.max_fields) {
            Ok(()) => {
                self.events.push(event::from_object(obj, ctx, id));
                self.outcome(line, Outcome::Stored);
                true
            }
            Err(reason) => {
                let raw = serde_json::to_vec(&obj).unwrap_or_default();
                self.reject(&raw, line, "too_many_fields", reason);
                false
            }
        }
    }

    fn finish(self, types: Vec<TypeRun>) -> Built {
        Built {
            events: self.events,
            outcomes: self.outcomes,
            counts: self.counts,
            errors: self.errors,
            error_count: self.error_count,
            reject_reasons: self.reject_reasons,
            types,
            received: self.ctx.received,
        }
    }
}

/// Items of a route without filters → stored events; `ids` are ids the
/// source chose for some items (by line, ascending).
pub fn unfiltered(
    items: Vec<(usize, Item<'_>)>,
    ctx: &EventContext,
    max_line: usize,
    ids: Vec<(usize, String)>,
) -> Built {
    let mut b = Builder::new(ctx, max_line, &items, ids);
    for (line, item) in items {
        match item {
            Item::Object(obj, _) => {
                if b.object(obj, line, ctx) {
                    b.counts.accepted += 1;
                }
            }
            item @ (Item::Json(_) | Item::Lined(_)) => {
                let id = b.take_id(line);
                b.json(item, line, ctx, id);
            }
            Item::Mapped(m) => {
                let id = b.take_id(line);
                match event::from_mapped(m, ctx, id) {
                    Ok(stored) => {
                        b.events.push(stored);
                        b.counts.accepted += 1;
                    }
                    Err((m, id)) => b.json(Item::Json(Cow::Owned(m.text())), line, ctx, id),
                }
            }
            Item::Text(text) => {
                b.events.push(event::from_text(text, ctx));
                b.counts.accepted += 1;
            }
            Item::Event(stored) => {
                b.events.push(stored);
                b.counts.accepted += 1;
            }
            Item::Bad { raw, reason, kind } => b.reject(&raw, line, kind, reason),
        }
    }
    b.finish(Vec::new())
}

/// Items through the route's filter chain, then stored events.
/// `accepted` counts the items that decoded; what the filters did with
/// them is in `dropped`, `dead_lettered` and the errors.
/// An item's chosen id goes to the first object event built from it.
pub fn filtered(
    items: Vec<(usize, Item<'_>)>,
    ctx: &EventContext,
    max_line: usize,
    ids: Vec<(usize, String)>,
    filters: (&filter::Registry, &[filter::FilterRef]),
    info: &filter::BatchInfo,
) -> Built {
    let (registry, chain) = filters;
    let mut b = Builder::new(ctx, max_line, &items, ids);
    let mut pending = Vec::with_capacity(items.len());
    for (line, item) in items {
        let (doc, raw) = match item.parse_text() {
            Item::Json(_) | Item::Mapped(_) | Item::Lined(_) => unreachable!("parsed above"),
            Item::Object(obj, raw) => (filter::Doc::Object(obj), raw.map(<[u8]>::to_vec)),
            Item::Text(text) => (filter::Doc::Text(text.to_string()), None),
            Item::Event(stored) => {
                // A source builds events itself only for unfiltered routes.
                b.counts.accepted += 1;
                b.dead_letter(filter::DeadLetter {
                    line,
                    raw: stored,
                    filter: chain.first().map_or_else(String::new, |f| f.name.clone()),
                    reason: "a pre-built event cannot go through filters".into(),
                });
                continue;
            }
            Item::Bad { raw, reason, kind } => {
                b.reject(&raw, line, kind, reason);
                continue;
            }
        };
        b.counts.accepted += 1;
        // Dropped unless an event or a dead letter of this line turns up.
        if let Ok(i) = b.lines.binary_search(&line) {
            b.outcomes[i] = Outcome::Dropped;
        }
        pending.push(filter::Pending {
            line,
            doc,
            raw,
            log_type: None,
        });
    }
    let out = filter::chain::run(registry, chain, info, pending);
    b.counts.dropped = out.dropped;
    for d in out.dead {
        b.dead_letter(d);
    }
    // Events of the route's type first, then each type a filter gave.
    let mut events = out.events;
    events.sort_by(|a, b| a.log_type.cmp(&b.log_type));
    let mut types = Vec::new();
    let mut events = events.into_iter().peekable();
    while let Some(first) = events.next() {
        let group_type = first.log_type.clone();
        let log_type = group_type.as_deref().unwrap_or(ctx.log_type);
        let typed = EventContext {
            log_type,
            ..ctx.clone()
        };
        let before = b.events.len();
        let mut next = Some(first);
        while let Some(ev) = next {
            match ev.doc {
                filter::Doc::Object(obj) => {
                    b.object(obj, ev.line, &typed);
                }
                filter::Doc::Text(text) => {
                    b.events.push(event::from_text(&text, &typed));
                    b.outcome(ev.line, Outcome::Stored);
                }
            }
            next = events.next_if(|e| e.log_type == group_type);
        }
        types.push(TypeRun {
            log_type: log_type.to_string(),
            n: b.events.len() - before,
        });
    }
    if types.iter().all(|t| t.log_type == ctx.log_type) {
        return b.finish(Vec::new());
    }
    // Rejected and dead-lettered events, pushed first, keep the route's type.
    let head = b.events.len() - types.iter().map(|t| t.n).sum::<usize>();
    if head > 0 {
        types.insert(
            0,
            TypeRun {
                log_type: ctx.log_type.to_string(),
                n: head,
            },
        );
    }
    b.finish(types)
}
