//! Keeps every event; with `drop_level = "debug"` drops events of that level.

use logway_filter_sdk::{BatchContext, Config, Event, Filter, Verdict, export_filter};

struct Keep {
    drop_level: Option<String>,
}

impl Filter for Keep {
    fn new(config: &Config) -> Result<Self, String> {
        Ok(Keep {
            drop_level: config.get("drop_level").map(str::to_string),
        })
    }

    fn process(&mut self, _ctx: &BatchContext, event: &Event) -> Verdict {
        match (&self.drop_level, &event.promoted.level) {
            (Some(drop), Some(level)) if drop == level => Verdict::Drop,
            _ => Verdict::Keep,
        }
    }
}

export_filter!(Keep);
