//! Parses OpenSSH (`sshd`) syslog lines into fields.
//!
//! ```text
//! Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186
//! 2026-11-21T08:04:09.123456+01:00 bastion sshd-session[812]: Accepted publickey for ops from 192.0.2.7 port 50522 ssh2
//! ```
//!
//! The line is a text event's line or a JSON event's `message` (or `msg`)
//! string: `TIME HOST PROCESS[PID]: MESSAGE`, with the classic syslog time
//! (`Dec 10 06:55:46`, `Dec  9 ...`) or an RFC 3339 one (rsyslog's
//! high-precision format), an optional `<PRI>` in front. A line that parses
//! becomes [`Verdict::Edits`] setting:
//!
//! - `timestamp`: RFC 3339 UTC. An RFC 3339 time is converted to UTC. A
//!   classic time has no zone (taken as UTC) and no year: the `year` config
//!   key gives it, or else the year the batch was received in (see below);
//! - `syslog_time`: the time as written (`Dec 10 06:55:46`);
//! - `host` (when the line names one), `process` (`sshd`), `pid` (integer,
//!   when the tag has `[PID]`), `message` (after `PROCESS[PID]: `, blanks
//!   around it trimmed);
//! - from the message, where it names them (`Invalid user X from IP`,
//!   `Failed password for [invalid user] X from IP port N ssh2`, `Accepted
//!   ...`, `pam_unix(sshd:auth): authentication failure; ... rhost=H
//!   user=X`, `reverse mapping checking getaddrinfo for H [IP] failed`,
//!   `Received disconnect from IP: ...`, `Connection closed by IP
//!   [preauth]`, `message repeated N times: [ ... ]`, ...): `user`,
//!   `source_ip` (only a valid IPv4/IPv6 address), `source_host` (a host
//!   name where an address was expected, e.g. `rhost=` after a reverse
//!   lookup), `source_port` (integer). A user name is kept exactly as
//!   logged (sshd logs `Invalid user  0101`, i.e. the name ` 0101`).
//!
//! Without `year`, a classic time gets the latest year, from the received
//! year plus one down, that does not put it more than a day after the batch
//! was received: a `Dec 31 23:59:59` line received on January 1st belongs to
//! the year before, a `Jan  1 00:00:01` line from a clock slightly ahead
//! received on December 31st to the year after, and `Feb 29` to a leap year.
//!
//! A line that does not parse is kept unchanged apart from `parse_error =
//! "openssh: <reason>"`, and so is an event with no string message. One
//! exception: a JSON event whose `service` is `sshd...` and whose message
//! has no syslog header comes from a syslog listener that already split the
//! header into `timestamp`, `host`, `service` and `fields.procid`; only
//! `user`, `source_ip`, `source_host` and `source_port` are added to it
//! (the event is kept as is when its message names none).
//!
//! Config: `year` (optional, 1 to 9999): the year of classic syslog times.
//! Any other key is refused so a typo does not go unnoticed.

use std::fmt::Write as _;
use std::net::IpAddr;

use logway_filter_sdk::{
    BatchContext, Config, Edit, Event, EventFormat, Filter, Verdict, export_filter, set,
};

/// Prefix of every `parse_error` this filter sets, so they can be searched.
const ERROR_PREFIX: &str = "openssh: ";

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

const DAY_MS: i64 = 86_400_000;

/// The time at the start of a syslog line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogTime {
    /// RFC 3164 `Mmm dd hh:mm:ss`: no year, no zone.
    Classic {
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
    },
    /// RFC 3339, already converted to a Unix time.
    Rfc3339 {
        unix_secs: i64,
        nanos: u32,
        /// How many fraction digits the line gave, kept in the output.
        frac_digits: u8,
    },
}

impl SyslogTime {
    /// RFC 3339 UTC. A classic time takes `year` if given, else the year
    /// chosen from `received_ms` (see the module docs).
    pub fn rfc3339(&self, year: Option<i64>, received_ms: i64) -> Result<String, &'static str> {
        match *self {
            SyslogTime::Rfc3339 {
                unix_secs,
                nanos,
                frac_digits,
            } => format_rfc3339(unix_secs, nanos, frac_digits),
            SyslogTime::Classic {
                month,
                day,
                hour,
                minute,
                second,
            } => {
                let clock = i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
                let secs_in = |y: i64| {
                    (day <= days_in_month(y, month))
                        .then(|| days_from_civil(y, month, day) * 86_400 + clock)
                };
                let unix_secs = match year {
                    Some(y) => secs_in(y).ok_or("the day does not exist in the configured year")?,
                    None => {
                        let received_year = civil_from_days(received_ms.div_euclid(DAY_MS)).0;
                        // Nine years back always reach a leap year (for Feb 29).
                        (received_year - 8..=received_year + 1)
                            .rev()
                            .filter_map(secs_in)
                            .find(|s| s.saturating_mul(1000) <= received_ms.saturating_add(DAY_MS))
                            .ok_or("no year fits the day near the received time")?
                    }
                };
                format_rfc3339(unix_secs, 0, 0)
            }
        }
    }
}

/// What the message says about who connected.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Details<'a> {
    pub user: Option<&'a str>,
    pub source_ip: Option<&'a str>,
    pub source_host: Option<&'a str>,
    pub source_port: Option<u16>,
}

impl<'a> Details<'a> {
    fn is_empty(&self) -> bool {
        *self == Details::default()
    }

    fn push_edits(&self, edits: &mut Vec<Edit>) {
        if let Some(user) = self.user {
            edits.push(set("user", user));
        }
        if let Some(ip) = self.source_ip {
            edits.push(set("source_ip", ip));
        }
        if let Some(host) = self.source_host {
            edits.push(set("source_host", host));
        }
        if let Some(port) = self.source_port {
            edits.push(set("source_port", u32::from(port)));
        }
    }

    fn user(&mut self, user: &'a str) {
        // An empty name (`Invalid user  from ...`) says nothing.
        if !user.is_empty() {
            self.user = Some(user);
        }
    }

    /// An address where sshd logs the peer: an IP, or a host name when
    /// sshd resolved it (`UseDNS`) or PAM did (`rhost=`).
    fn addr(&mut self, addr: &'a str) {
        if addr.parse::<IpAddr>().is_ok() {
            self.source_ip = Some(addr);
        } else if is_host_name(addr) {
            self.source_host = Some(addr);
        }
    }

    /// `ADDR[ port N][ ...]`.
    fn addr_port(&mut self, s: &'a str) {
        let (addr, rest) = s.split_once(' ').unwrap_or((s, ""));
        self.addr(addr);
        self.port(rest);
    }

    /// `port N...` (digits up to anything else, as in `port 22:11:`).
    fn port(&mut self, s: &str) {
        if let Some(p) = s.strip_prefix("port ") {
            let end = p
                .bytes()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(p.len());
            self.source_port = p[..end].parse().ok();
        }
    }

    /// `USER from ADDR[ port N ...]`; the last ` from ` splits, so a user
    /// name with spaces stays whole.
    fn user_from(&mut self, s: &'a str) {
        if let Some((user, addr)) = s.rsplit_once(" from ") {
            self.user(user);
            self.addr_port(addr);
        }
    }

    /// `USER ADDR[ port N]` (newer sshd: `Disconnected from invalid user X
    /// 1.2.3.4 port 5`); the address is the last word before ` port `.
    fn user_addr(&mut self, s: &'a str) {
        let (head, port) = match s.rfind(" port ") {
            Some(i) => (&s[..i], &s[i + 1..]),
            None => (s, ""),
        };
        if let Some((user, addr)) = head.rsplit_once(' ') {
            self.user(user);
            self.addr(addr);
            self.port(port);
        }
    }
}

/// `(user|authenticating user|invalid user) X ADDR port N`, or `ADDR port N`.
fn maybe_user_addr<'a>(d: &mut Details<'a>, s: &'a str) {
    let who = ["invalid user ", "authenticating user ", "user "]
        .iter()
        .find_map(|p| s.strip_prefix(p));
    match who {
        Some(rest) => d.user_addr(rest),
        None => d.addr_port(s),
    }
}

/// Reads `user`, `source_ip`, `source_host` and `source_port` from an sshd
/// message (the part after `sshd[PID]: `).
pub fn details(message: &str) -> Details<'_> {
    let mut d = Details::default();
    let mut m = message.trim();
    // syslogd's de-duplication wraps the original message.
    if let Some(rest) = m.strip_prefix("message repeated ")
        && let Some((_, inner)) = rest.split_once(" times: [")
    {
        m = inner.strip_suffix(']').unwrap_or(inner).trim();
    }
    let m = m.strip_suffix("[preauth]").map_or(m, str::trim_end);
    let m = m.strip_prefix("error: ").unwrap_or(m);

    if let Some(rest) = m.strip_prefix("Invalid user ") {
        d.user_from(rest);
    } else if let Some(rest) = m.strip_prefix("input_userauth_request: invalid user ") {
        d.user(rest);
    } else if let Some(rest) = ["Failed ", "Accepted ", "Postponed "]
        .iter()
        .find_map(|p| m.strip_prefix(p))
        .and_then(|r| r.split_once(" for ").map(|(_method, r)| r))
        .or_else(|| m.strip_prefix("maximum authentication attempts exceeded for "))
    {
        d.user_from(rest.strip_prefix("invalid user ").unwrap_or(rest));
    } else if let Some(rest) = m
        .strip_prefix("Received disconnect from ")
        .or_else(|| m.strip_prefix("Disconnected from "))
        .or_else(|| m.strip_prefix("Connection closed by "))
        .or_else(|| m.strip_prefix("Connection reset by "))
    {
        // The old format ends the address with `: ` (`from 1.2.3.4: 11: Bye`,
        // also after an IPv6 address), the new one has `port 22:11: Bye`,
        // whose port reading stops at the colon.
        maybe_user_addr(&mut d, rest.split_once(": ").map_or(rest, |(head, _)| head));
    } else if let Some(rest) =
        m.strip_prefix("Disconnecting: Too many authentication failures for ")
    {
        d.user(rest);
    } else if let Some(rest) = m
        .strip_prefix("Disconnecting ")
        .and_then(|r| r.split_once(": ").map(|(who, _why)| who))
    {
        maybe_user_addr(&mut d, rest);
    } else if let Some(rest) = m
        .strip_prefix("Did not receive identification string from ")
        .or_else(|| m.strip_prefix("Connection from "))
        .or_else(|| m.strip_prefix("Unable to negotiate with "))
    {
        d.addr_port(rest.split_once(": ").map_or(rest, |(head, _)| head));
    } else if let Some(rest) = m.strip_prefix("reverse mapping checking getaddrinfo for ") {
        // `HOST [IP] failed - POSSIBLE BREAK-IN ATTEMPT!`
        if let Some((host, rest)) = rest.split_once(" [")
            && let Some((ip, _)) = rest.split_once(']')
        {
            d.addr(host);
            d.addr(ip);
        }
    } else if let Some(rest) = m.strip_prefix("Address ") {
        // `IP maps to HOST, but this does not map back to the address ...`
        if let Some((ip, rest)) = rest.split_once(" maps to ")
            && let Some((host, _)) = rest.split_once(',')
        {
            d.addr(ip);
            d.addr(host);
        }
    } else if let Some(rest) = m.strip_prefix("User ")
        && let Some((who, _)) = rest.split_once(" not allowed because ")
    {
        d.user_from(who);
    } else if m.contains("authentication failure") {
        // pam_unix / PAM summary: `...; logname= uid=0 euid=0 tty=ssh ruser= rhost=H  user=X`.
        if let Some(host) = pam_value(m, "rhost=") {
            d.addr(host);
        }
        if let Some(user) = pam_value(m, "user=") {
            d.user(user);
        }
    } else if let Some(rest) = m
        .split_once("session opened for user ")
        .or_else(|| m.split_once("session closed for user "))
        .map(|(_, r)| r)
    {
        // `X by (uid=0)`, or newer `X(uid=0) by (uid=0)`.
        let end = rest.find([' ', '(']).unwrap_or(rest.len());
        d.user(&rest[..end]);
    } else if let Some((_, rest)) = m.rsplit_once(" from ") {
        // Any other `... from IP[ port N]`, trusted only for a real address.
        let (addr, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        if addr.parse::<IpAddr>().is_ok() {
            d.source_ip = Some(addr);
            d.port(tail);
        }
    }
    d
}

/// The value of a PAM `key=value` (whitespace-separated, `key` preceded by
/// a blank so `user=` does not match `ruser=`), if not empty.
fn pam_value<'a>(m: &'a str, key: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(i) = m[from..].find(key).map(|i| from + i) {
        let after = &m[i + key.len()..];
        if i == 0 || m[..i].ends_with([' ', ';', '\t']) {
            let end = after.find([' ', '\t']).unwrap_or(after.len());
            return (end > 0).then(|| &after[..end]);
        }
        from = i + key.len();
    }
    None
}

/// A DNS name (letters, digits, `-`, `_`, `.`), not sshd's `UNKNOWN`.
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s != "UNKNOWN"
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// One parsed line; the text fields borrow from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// The time as written: `Dec 10 06:55:46`.
    pub syslog_time: &'a str,
    pub time: SyslogTime,
    pub host: Option<&'a str>,
    pub process: &'a str,
    pub pid: Option<u32>,
    /// After `PROCESS[PID]: `, blanks around it trimmed.
    pub message: &'a str,
    pub details: Details<'a>,
}

/// Parses one syslog line: `[<PRI>]TIME [HOST ]PROCESS[[PID]]: MESSAGE`.
/// The error is a short reason, without the `openssh: ` prefix.
pub fn parse(line: &str) -> Result<Parsed<'_>, &'static str> {
    let line = line.trim();
    if line.is_empty() {
        return Err("empty line");
    }
    let line = strip_pri(line);
    let (syslog_time, time, rest) = parse_time(line)?;
    let rest = rest
        .strip_prefix(' ')
        .ok_or("no host or process after the time")?
        .trim_start_matches(' ');

    // The host is optional: some senders leave it out, and a host name
    // never ends with the tag's colon.
    let (first, after_first) = rest.split_once(' ').unwrap_or((rest, ""));
    let (host, tag_and_message) = if first.ends_with(':') || first.is_empty() {
        (None, rest)
    } else {
        (Some(first), after_first.trim_start_matches(' '))
    };
    let (tag, message) = tag_and_message
        .split_once(':')
        .ok_or("no `process[pid]:` tag")?;
    let (process, pid) = match tag.split_once('[') {
        Some((process, pid)) => {
            let pid = pid.strip_suffix(']').ok_or("no `]` after the pid")?;
            let pid = digits(pid.as_bytes(), 1, 10)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or("the pid is not a number")?;
            (process, Some(pid))
        }
        None => (tag, None),
    };
    if process.is_empty()
        || !process
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'[' && b != b']')
    {
        return Err("the process name is not a word");
    }
    let message = message.trim();
    Ok(Parsed {
        syslog_time,
        time,
        host,
        process,
        pid,
        message,
        details: details(message),
    })
}

/// Drops an RFC 3164 `<PRI>` (`<38>`), as a raw syslog line carries.
fn strip_pri(line: &str) -> &str {
    if let Some(rest) = line.strip_prefix('<')
        && let Some((pri, rest)) = rest.split_once('>')
        && digits(pri.as_bytes(), 1, 3).is_some()
    {
        return rest;
    }
    line
}

/// The time at the start of `line`: its text, its value and the rest.
fn parse_time(line: &str) -> Result<(&str, SyslogTime, &str), &'static str> {
    let b = line.as_bytes();
    if b.first().is_some_and(u8::is_ascii_digit) {
        let end = line.find(' ').unwrap_or(line.len());
        let time = parse_rfc3339(&line[..end])?;
        return Ok((&line[..end], time, &line[end..]));
    }
    // `Mmm dd hh:mm:ss` or `Mmm  d hh:mm:ss`: 15 bytes either way.
    let (Some(text), Some(rest)) = (line.get(..15), line.get(15..)) else {
        return Err("the line does not start with `Mmm dd hh:mm:ss`");
    };
    let t = text.as_bytes();
    let month = MONTHS
        .iter()
        .position(|m| m.as_bytes() == &t[..3])
        .ok_or("the line does not start with a month name")? as u8
        + 1;
    let day = match [t[3], t[4], t[5], t[6]] {
        [b' ', b' ', d, b' '] => digits(&[d], 1, 1),
        [b' ', d1, d2, b' '] => digits(&[d1, d2], 2, 2),
        _ => None,
    }
    .ok_or("bad day")? as u8;
    let (hour, minute, second) = clock(&t[7..15]).ok_or("the clock is not `hh:mm:ss`")?;
    // Any year: Feb 29 is checked once the year is known.
    if day == 0 || day > days_in_month(2000, month) {
        return Err("the day does not exist in that month");
    }
    let time = SyslogTime::Classic {
        month,
        day,
        hour,
        minute,
        second,
    };
    Ok((text, time, rest))
}

/// `YYYY-MM-DDThh:mm:ss[.frac](Z|±hh:mm)`, to a Unix time.
fn parse_rfc3339(s: &str) -> Result<SyslogTime, &'static str> {
    const BAD: &str = "the time is not RFC 3339";
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return Err(BAD);
    }
    let year = digits(&b[..4], 4, 4).ok_or(BAD)? as i64;
    let month = digits(&b[5..7], 2, 2).ok_or(BAD)? as u8;
    let day = digits(&b[8..10], 2, 2).ok_or(BAD)? as u8;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err("the day does not exist in that month");
    }
    let (hour, minute, second) = clock(&b[11..19]).ok_or(BAD)?;
    let mut rest = &s[19..];
    let (mut nanos, mut frac_digits) = (0, 0);
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Err(BAD);
        }
        // Beyond nanoseconds the digits are dropped.
        let kept = n.min(9);
        // At most 9 digits: fits a u32.
        nanos =
            digits(&frac.as_bytes()[..kept], 1, 9).ok_or(BAD)? as u32 * 10u32.pow(9 - kept as u32);
        frac_digits = kept as u8;
        rest = &frac[n..];
    }
    let offset_secs = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = digits(&[*h1, *h2], 2, 2).ok_or(BAD)? as i64;
            let m = digits(&[*m1, *m2], 2, 2).ok_or(BAD)? as i64;
            if h > 23 || m > 59 {
                return Err(BAD);
            }
            let secs = h * 3600 + m * 60;
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return Err("the time has no zone"),
    };
    let unix_secs = days_from_civil(year, month, day) * 86_400
        + i64::from(hour) * 3600
        + i64::from(minute) * 60
        + i64::from(second)
        - offset_secs;
    Ok(SyslogTime::Rfc3339 {
        unix_secs,
        nanos,
        frac_digits,
    })
}

/// `hh:mm:ss` (8 bytes), in range.
fn clock(b: &[u8]) -> Option<(u8, u8, u8)> {
    let [h1, h2, b':', m1, m2, b':', s1, s2] = *b else {
        return None;
    };
    let h = digits(&[h1, h2], 2, 2)? as u8;
    let m = digits(&[m1, m2], 2, 2)? as u8;
    let s = digits(&[s1, s2], 2, 2)? as u8;
    (h <= 23 && m <= 59 && s <= 59).then_some((h, m, s))
}

/// `s` as a decimal number of `min..=max` digits (and nothing else).
fn digits(s: &[u8], min: usize, max: usize) -> Option<u64> {
    if s.len() < min || s.len() > max || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm: no tables, any year).
fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A Unix time as `YYYY-MM-DDThh:mm:ss[.frac]Z` (years 0 to 9999 only).
fn format_rfc3339(unix_secs: i64, nanos: u32, frac_digits: u8) -> Result<String, &'static str> {
    let (year, month, day) = civil_from_days(unix_secs.div_euclid(86_400));
    if !(0..=9999).contains(&year) {
        return Err("the year is out of range");
    }
    let secs = unix_secs.rem_euclid(86_400);
    let mut s = String::with_capacity(30);
    // Writing to a String cannot fail.
    let _ = write!(
        s,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if frac_digits > 0 {
        let digits = u32::from(frac_digits.min(9));
        let _ = write!(
            s,
            ".{:0width$}",
            nanos / 10u32.pow(9 - digits),
            width = digits as usize
        );
    }
    s.push('Z');
    Ok(s)
}

/// Keeps the event but records why it was not (fully) parsed.
fn parse_error(reason: &str) -> Edit {
    set("parse_error", format!("{ERROR_PREFIX}{reason}"))
}

/// The filter: the configured year, if any.
pub struct OpenSsh {
    year: Option<i64>,
}

impl OpenSsh {
    /// The verdict for one event (the filter's whole logic, callable natively).
    pub fn verdict(&self, ctx: &BatchContext, event: &Event) -> Verdict {
        let Some(line) = event.message() else {
            return Verdict::Edits(vec![parse_error(match event.format {
                EventFormat::Text => "the line is not UTF-8",
                EventFormat::Json => "no string `message` field",
            })]);
        };
        let p = match parse(&line) {
            Ok(p) => p,
            Err(reason) => {
                let from_listener = event.format == EventFormat::Json
                    && event
                        .promoted
                        .service
                        .as_deref()
                        .is_some_and(|s| s.starts_with("sshd"));
                if !from_listener {
                    return Verdict::Edits(vec![parse_error(reason)]);
                }
                let d = details(&line);
                if d.is_empty() {
                    return Verdict::Keep;
                }
                let mut edits = Vec::with_capacity(4);
                d.push_edits(&mut edits);
                return Verdict::Edits(edits);
            }
        };
        let mut edits = Vec::with_capacity(11);
        match p.time.rfc3339(self.year, ctx.received_ms) {
            Ok(ts) => edits.push(set("timestamp", ts)),
            // The rest of the line is still worth having.
            Err(reason) => edits.push(parse_error(reason)),
        }
        edits.push(set("syslog_time", p.syslog_time));
        if let Some(host) = p.host {
            edits.push(set("host", host));
        }
        edits.push(set("process", p.process));
        if let Some(pid) = p.pid {
            edits.push(set("pid", pid));
        }
        edits.push(set("message", p.message));
        p.details.push_edits(&mut edits);
        Verdict::Edits(edits)
    }
}

impl Filter for OpenSsh {
    const DROPS_EVENTS: bool = false;

    fn new(config: &Config) -> Result<Self, String> {
        if let Some((key, _)) = config.pairs().iter().find(|(k, _)| k != "year") {
            return Err(format!("openssh: unknown config key `{key}` (only `year`)"));
        }
        let year = match config.get("year") {
            None => None,
            Some(v) => match v.trim().parse::<i64>() {
                Ok(y) if (1..=9999).contains(&y) => Some(y),
                _ => return Err(format!("config `year`: `{v}` is not a year from 1 to 9999")),
            },
        };
        Ok(OpenSsh { year })
    }

    fn process(&mut self, ctx: &BatchContext, event: &Event) -> Verdict {
        self.verdict(ctx, event)
    }
}

export_filter!(OpenSsh);

#[cfg(test)]
mod tests;
