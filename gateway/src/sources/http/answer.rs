//! The native HTTP answer: `{"accepted":N,"rejected":M,"errors":[…]}`,
//! 200 once every event is durable, 400 when no line was usable (the
//! lines are still kept as rejected events).

use serde::Serialize;

use crate::pipeline::Built;

#[derive(Debug, Serialize)]
pub struct LineError {
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct IngestAnswer {
    pub accepted: usize,
    pub rejected: usize,
    /// Events the route's filters dropped on purpose.
    #[serde(skip_serializing_if = "is_zero")]
    pub dropped: usize,
    /// Events a filter failed on, stored as dead letters (see `errors`).
    #[serde(skip_serializing_if = "is_zero")]
    pub dead_lettered: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<LineError>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub errors_truncated: bool,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl IngestAnswer {
    pub fn of(built: &Built) -> IngestAnswer {
        let c = built.counts;
        IngestAnswer {
            accepted: c.accepted,
            rejected: c.rejected,
            dropped: c.dropped,
            dead_lettered: c.dead_lettered,
            // At most `pipeline::build::MAX_REPORTED_ERRORS`.
            errors: built
                .errors
                .iter()
                .map(|(line, reason)| LineError {
                    line: *line,
                    reason: reason.clone(),
                })
                .collect(),
            errors_truncated: built.error_count > built.errors.len(),
        }
    }

    /// 200, or 400 when no line was accepted.
    pub fn status(&self) -> u16 {
        if self.accepted == 0 { 400 } else { 200 }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("answer serializes")
    }
}
