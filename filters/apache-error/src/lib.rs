//! Parses Apache httpd error-log lines into fields.
//!
//! ```text
//! [Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties
//! [Sun Dec 04 05:15:09 2005] [error] [client 222.166.160.184] Directory index forbidden by rule: /var/www/html/
//! ```
//!
//! The line is a text event's line or a JSON event's `message` (or `msg`)
//! string. A line that parses becomes [`Verdict::Edits`] setting:
//!
//! - `timestamp`: the time as RFC 3339 UTC (`2005-12-04T04:47:44Z`). The log
//!   carries no zone, so it is taken as UTC; fractional seconds (Apache 2.4,
//!   `04:47:44.123456`) are kept;
//! - `apache_time`: the time as written (`Sun Dec 04 04:47:44 2005`);
//! - `level`: the level bracket (`notice`); for Apache 2.4's
//!   `[module:level]` the part after the colon, and
//! - `module`: the module of a `[module:level]` bracket, when it names one;
//! - `message`: what follows the level bracket, trailing blanks trimmed;
//! - `client_ip`: the address of a leading `[client ADDR]` bracket of the
//!   message (its port, if any, dropped), when there is one.
//!
//! A line that does not parse (or an event with no string message) is kept
//! unchanged apart from `parse_error = "apache-error: <reason>"`.
//!
//! Config: none; any key is refused so a typo does not go unnoticed.

use std::fmt::Write as _;
use std::net::IpAddr;

use logway_filter_sdk::{
    BatchContext, Config, Edit, Event, EventFormat, Filter, Verdict, export_filter, set,
};

/// Prefix of every `parse_error` this filter sets, so they can be searched.
const ERROR_PREFIX: &str = "apache-error: ";

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A calendar time as written in the log (no zone: read as UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// Fractional second in nanoseconds, and how many digits the log gave
    /// (0 when it gave none), so the output keeps the log's precision.
    pub nanos: u32,
    pub frac_digits: u8,
}

impl DateTime {
    /// RFC 3339 in UTC: `2005-12-04T04:47:44Z`.
    pub fn rfc3339(&self) -> String {
        let mut s = String::with_capacity(30);
        // Writing to a String cannot fail.
        let _ = write!(
            s,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        );
        if self.frac_digits > 0 {
            let digits = u32::from(self.frac_digits);
            let frac = self.nanos / 10u32.pow(9 - digits);
            let _ = write!(s, ".{:0width$}", frac, width = digits as usize);
        }
        s.push('Z');
        s
    }
}

/// One parsed line; the text fields borrow from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// The time as written: `Sun Dec 04 04:47:44 2005`.
    pub time_text: &'a str,
    pub time: DateTime,
    pub level: &'a str,
    /// Apache 2.4's `[module:level]`: the module, when not empty.
    pub module: Option<&'a str>,
    /// Everything after the level bracket, trailing blanks trimmed.
    pub message: &'a str,
    /// The address of a leading `[client ADDR]` bracket of the message.
    pub client_ip: Option<&'a str>,
}

impl Parsed<'_> {
    /// The edits that store these fields on the event.
    pub fn edits(&self) -> Vec<Edit> {
        let mut edits = Vec::with_capacity(6);
        edits.push(set("timestamp", self.time.rfc3339()));
        edits.push(set("apache_time", self.time_text));
        edits.push(set("level", self.level));
        if let Some(module) = self.module {
            edits.push(set("module", module));
        }
        edits.push(set("message", self.message));
        if let Some(ip) = self.client_ip {
            edits.push(set("client_ip", ip));
        }
        edits
    }
}

/// Parses one error-log line: `[TIME] [LEVEL] MESSAGE`. The error is a short
/// reason, without the `apache-error: ` prefix.
pub fn parse(line: &str) -> Result<Parsed<'_>, &'static str> {
    // Lines read from files may keep their `\r`; the message never needs it.
    let line = line.trim_end();
    if line.is_empty() {
        return Err("empty line");
    }
    let rest = line
        .strip_prefix('[')
        .ok_or("line does not start with `[TIME]`")?;
    let (time_text, rest) = rest.split_once(']').ok_or("no `]` after the time")?;
    let time = parse_time(time_text)?;

    let rest = rest.trim_start_matches(' ');
    let rest = rest
        .strip_prefix('[')
        .ok_or("no `[LEVEL]` after the time")?;
    let (bracket, rest) = rest.split_once(']').ok_or("no `]` after the level")?;
    // 2.2 writes `[error]`, 2.4 `[core:error]` (or `[:error]`).
    let (module, level) = match bracket.rsplit_once(':') {
        Some((module, level)) => ((!module.is_empty()).then_some(module), level),
        None => (None, bracket),
    };
    if level.is_empty() || !level.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("the level is not a word");
    }
    let module_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    if module.is_some_and(|m| !m.bytes().all(module_char)) {
        return Err("the level is not a word");
    }

    let message = rest.trim_start_matches(' ');
    Ok(Parsed {
        time_text,
        time,
        level,
        module,
        message,
        client_ip: client_ip(message),
    })
}

/// Reads `Www Mmm DD HH:MM:SS[.frac] YYYY` (Apache's `apr_ctime`; a
/// space-padded day is accepted too).
fn parse_time(text: &str) -> Result<DateTime, &'static str> {
    let mut parts = text.split_ascii_whitespace();
    let (Some(weekday), Some(month), Some(day), Some(clock), Some(year), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err("the time is not `Www Mmm DD HH:MM:SS YYYY`");
    };
    if !WEEKDAYS.contains(&weekday) {
        return Err("the time has no weekday");
    }
    let month = MONTHS
        .iter()
        .position(|m| *m == month)
        .ok_or("the time has no month name")? as u8
        + 1;
    let year = digits(year.as_bytes(), 4, 4).ok_or("the year is not 4 digits")? as u16;
    let day = digits(day.as_bytes(), 1, 2).ok_or("bad day")? as u8;
    if day == 0 || day > days_in_month(year, month) {
        return Err("the day does not exist in that month");
    }
    let (hms, frac) = match clock.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (clock, None),
    };
    let (hour, minute, second) = match hms.as_bytes() {
        [h1, h2, b':', m1, m2, b':', s1, s2] => (
            digits(&[*h1, *h2], 2, 2),
            digits(&[*m1, *m2], 2, 2),
            digits(&[*s1, *s2], 2, 2),
        ),
        _ => return Err("the clock is not `HH:MM:SS`"),
    };
    let (Some(hour), Some(minute), Some(second)) = (hour, minute, second) else {
        return Err("the clock is not `HH:MM:SS`");
    };
    if hour > 23 || minute > 59 || second > 59 {
        return Err("the clock is out of range");
    }
    let (nanos, frac_digits) = match frac {
        None => (0, 0),
        Some(f) => {
            let n = digits(f.as_bytes(), 1, 9).ok_or("bad fractional second")?;
            (n * 10u32.pow(9 - f.len() as u32), f.len() as u8)
        }
    };
    Ok(DateTime {
        year,
        month,
        day,
        hour: hour as u8,
        minute: minute as u8,
        second: second as u8,
        nanos,
        frac_digits,
    })
}

/// `s` as a decimal number of `min..=max` digits (and nothing else).
fn digits(s: &[u8], min: usize, max: usize) -> Option<u32> {
    if s.len() < min || s.len() > max || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The address of the message's leading `[client ADDR]` bracket. 2.4 puts
/// `[pid N:tid M]` first and adds the port (`[client 1.2.3.4:5678]`), so a
/// few leading brackets are looked at and a port is dropped.
fn client_ip(message: &str) -> Option<&str> {
    let mut rest = message;
    for _ in 0..3 {
        let (bracket, after) = rest.strip_prefix('[')?.split_once(']')?;
        if let Some(addr) = bracket.strip_prefix("client ") {
            return ip_without_port(addr.trim());
        }
        rest = after.trim_start_matches(' ');
    }
    None
}

fn ip_without_port(addr: &str) -> Option<&str> {
    if addr.parse::<IpAddr>().is_ok() {
        return Some(addr);
    }
    // `1.2.3.4:5678`, or `::1:56789` (2.4 does not bracket IPv6).
    let (host, port) = addr.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<IpAddr>().is_ok().then_some(host)
}

/// Keeps the event but records why it was not parsed.
fn parse_error(reason: &str) -> Verdict {
    Verdict::Edits(vec![set("parse_error", format!("{ERROR_PREFIX}{reason}"))])
}

/// The filter: stateless, one verdict per event.
pub struct ApacheError;

impl ApacheError {
    /// The verdict for one event (the filter's whole logic, callable natively).
    pub fn verdict(event: &Event) -> Verdict {
        let Some(line) = event.message() else {
            return parse_error(match event.format {
                EventFormat::Text => "the line is not UTF-8",
                EventFormat::Json => "no string `message` field",
            });
        };
        match parse(&line) {
            Ok(parsed) => Verdict::Edits(parsed.edits()),
            Err(reason) => parse_error(reason),
        }
    }
}

impl Filter for ApacheError {
    const DROPS_EVENTS: bool = false;

    fn new(config: &Config) -> Result<Self, String> {
        match config.pairs().first() {
            Some((key, _)) => Err(format!(
                "apache-error takes no config, got unknown key `{key}`"
            )),
            None => Ok(ApacheError),
        }
    }

    fn process(&mut self, _ctx: &BatchContext, event: &Event) -> Verdict {
        ApacheError::verdict(event)
    }
}

export_filter!(ApacheError);

#[cfg(test)]
mod tests;
