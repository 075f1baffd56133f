//! Adds the browser, operating system and device class of a JSON event's
//! user agent.
//!
//! Config:
//!
//! - `field`: dot path of the user-agent string (default `user_agent`;
//!   with the default, `userAgent` and then `ua` are tried too);
//! - `target`: dot path of the object the results go under (default `ua`).
//!
//! Sets `{target}.browser`, `{target}.browser_version`, `{target}.os`,
//! `{target}.os_version` (each a string, or null when unknown) and
//! `{target}.device`: one of `desktop`, `mobile`, `tablet`, `bot`, `other`.
//! When the user agent itself sits at `target` (or above it: `ua` with the
//! default target), the results go under `{field}_parsed` instead, so the
//! string is not overwritten. Text events, and JSON events whose user agent
//! is missing, not a string, empty or `-`, are kept unchanged.
//!
//! Parsing is done by `woothee` (its regexes compile once per instance;
//! those of common browsers in [`Filter::new`], the rest on first use). Names are tidied: `Windows 10` becomes
//! `Windows` version `10`, `Mac OSX` becomes `macOS`, `iPhone`/`iPad`/`iPod`
//! become `iOS`, and for HTTP libraries the browser is the library (`curl`
//! with its version). Tablets are iPads, Android devices whose user agent
//! lacks `Mobile`, and anything that says `Tablet`. Limits: an iPad in
//! desktop mode sends a Mac user agent and counts as a desktop, and Windows
//! 11 sends the same user agent as Windows 10.

use logway_filter_sdk::{
    BatchContext, Config, Edit, Event, EventFormat, Filter, Verdict, export_filter, set,
};
use serde_json::{Map, Value as Json};
use woothee::parser::Parser;

/// Longer user agents are parsed on their first this many bytes: real ones
/// are well under 1 KiB, and a huge one must not cost a regex pass per
/// kilobyte per event.
const MAX_UA_BYTES: usize = 2048;

/// woothee's placeholder for what it could not tell.
const UNKNOWN: &str = woothee::woothee::VALUE_UNKNOWN;

/// The device class of a user agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Desktop,
    Mobile,
    Tablet,
    Bot,
    Other,
}

impl Device {
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Desktop => "desktop",
            Device::Mobile => "mobile",
            Device::Tablet => "tablet",
            Device::Bot => "bot",
            Device::Other => "other",
        }
    }
}

/// What a user agent says; `None` where it is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub browser: Option<&'a str>,
    pub browser_version: Option<&'a str>,
    pub os: Option<&'a str>,
    pub os_version: Option<String>,
    pub device: Device,
}

fn known(s: &str) -> Option<&str> {
    Some(s).filter(|s| !s.is_empty() && *s != UNKNOWN)
}

/// `haystack` contains `needle` (ASCII lowercase), ignoring ASCII case,
/// without allocating.
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char
/// boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The version after `name/` when the user agent starts with it
/// (`curl/8.4.0` → `8.4.0`), for HTTP libraries, whose version woothee
/// does not give.
fn library_version<'a>(ua: &'a str, name: &str) -> Option<&'a str> {
    let (product, rest) = ua.split_once('/')?;
    if !product.eq_ignore_ascii_case(name) {
        return None;
    }
    let version = rest.split([' ', ';', '(']).next().unwrap_or_default();
    Some(version).filter(|v| !v.is_empty())
}

/// Maps woothee's category (`pc`, `smartphone`, `mobilephone`, `crawler`,
/// `appliance`, `misc`, unknown) and OS to a device class.
pub fn device_class(category: &str, os: &str, ua: &str) -> Device {
    let device = match category {
        "crawler" => Device::Bot,
        "pc" => Device::Desktop,
        "mobilephone" => Device::Mobile,
        // woothee has no tablet category: iPads and Android tablets are
        // `smartphone` to it. Android phones say `Mobile`; tablets do not.
        "smartphone" => {
            if os == "iPad" || (os == "Android" && !ua.contains("Mobile")) || ua.contains("Tablet")
            {
                Device::Tablet
            } else {
                Device::Mobile
            }
        }
        _ => Device::Other,
    };
    // Bots woothee's list does not know often still call themselves so.
    if device != Device::Bot
        && ["bot/", "bot;", "crawler", "spider"]
            .iter()
            .any(|w| contains_ignore_case(ua, w))
    {
        return Device::Bot;
    }
    device
}

/// Parses a user agent.
pub fn parse<'a>(parser: &Parser, ua: &'a str) -> Parsed<'a> {
    let ua = truncate(ua, MAX_UA_BYTES);
    let Some(w) = parser.parse(ua) else {
        // Clients woothee does not know (`python-requests/2.31.0`,
        // `okhttp/4.12.0`) still name themselves in their first token.
        let (browser, browser_version) = match ua
            .split_once(' ')
            .map_or(ua, |(first, _)| first)
            .split_once('/')
        {
            Some((name, version))
                if !name.is_empty()
                    && !version.is_empty()
                    && name != "Mozilla"
                    && !name.contains(['(', ';']) =>
            {
                (Some(name), Some(version))
            }
            _ => (None, None),
        };
        return Parsed {
            browser,
            browser_version,
            os: None,
            os_version: None,
            device: device_class(UNKNOWN, UNKNOWN, ua),
        };
    };
    let device = device_class(w.category, w.os, ua);
    let (mut browser, mut browser_version) = (known(w.name), known(w.version));
    if w.name == "HTTP Library" {
        // woothee names the library in `version` (`curl`, `wget`, ...).
        browser = browser_version;
        browser_version = browser.and_then(|name| library_version(ua, name));
    }
    let mut os_version = known(&w.os_version).map(str::to_string);
    let os = match w.os {
        "iPhone" | "iPad" | "iPod" => Some("iOS"),
        "Mac OSX" => Some("macOS"),
        // `CrOS x86_64 14541.0.0`: the version without the architecture.
        "ChromeOS" => {
            os_version = os_version
                .as_deref()
                .and_then(|v| v.rsplit(' ').next())
                .map(str::to_string);
            Some("ChromeOS")
        }
        "Windows UNKNOWN Ver" => {
            os_version = None;
            Some("Windows")
        }
        // `Windows 10` with os_version `NT 10.0`: the marketing version is
        // the one people search for.
        name if name.starts_with("Windows ")
            && !name.starts_with("Windows Phone")
            && !name.starts_with("Windows CE") =>
        {
            os_version = Some(name["Windows ".len()..].to_string());
            Some("Windows")
        }
        name => known(name),
    };
    Parsed {
        browser,
        browser_version,
        os,
        os_version,
        device,
    }
}

/// Where one candidate user-agent field is read and its results written.
struct Source {
    path: String,
    browser: String,
    browser_version: String,
    os: String,
    os_version: String,
    device: String,
}

impl Source {
    fn new(path: &str, target: &str) -> Source {
        // Writing `ua.browser` over the string at `ua` would lose it.
        let clobbers = target == path
            || target
                .strip_prefix(path)
                .is_some_and(|rest| rest.starts_with('.'));
        let target = if clobbers {
            format!("{path}_parsed")
        } else {
            target.to_string()
        };
        Source {
            path: path.to_string(),
            browser: format!("{target}.browser"),
            browser_version: format!("{target}.browser_version"),
            os: format!("{target}.os"),
            os_version: format!("{target}.os_version"),
            device: format!("{target}.device"),
        }
    }

    fn edits(&self, parsed: Parsed) -> Vec<Edit> {
        vec![
            set(self.browser.as_str(), parsed.browser),
            set(self.browser_version.as_str(), parsed.browser_version),
            set(self.os.as_str(), parsed.os),
            set(self.os_version.as_str(), parsed.os_version),
            set(self.device.as_str(), parsed.device.as_str()),
        ]
    }
}

/// The value at a dot path of a JSON object.
fn lookup<'a>(obj: &'a Map<String, Json>, path: &str) -> Option<&'a Json> {
    let mut parts = path.split('.');
    let mut value = obj.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

fn check_path(key: &str, path: &str) -> Result<(), String> {
    if path.split('.').any(str::is_empty) {
        return Err(format!("config `{key}`: `{path}` is not a dot path"));
    }
    Ok(())
}

/// The filter: the fields to read, in order, and the parser.
pub struct UserAgent {
    sources: Vec<Source>,
    parser: Parser,
}

impl UserAgent {
    /// The edits for one event, or `None` to keep it unchanged.
    pub fn enrich(&self, event: &Event) -> Option<Vec<Edit>> {
        if !matches!(event.format, EventFormat::Json) {
            return None;
        }
        // A top-level field is read alone; a nested one needs the object.
        let mut obj = None;
        self.sources.iter().find_map(|source| {
            let value = if source.path.contains('.') {
                let obj = obj.get_or_insert_with(|| event.json());
                lookup(obj.as_ref()?, &source.path)?.clone()
            } else {
                event.field(&source.path)?
            };
            let ua = value.as_str()?.trim();
            if ua.is_empty() || ua == "-" {
                return None;
            }
            Some(source.edits(parse(&self.parser, ua)))
        })
    }
}

impl Filter for UserAgent {
    const DROPS_EVENTS: bool = false;

    fn new(config: &Config) -> Result<Self, String> {
        let target = config.get("target").map_or("ua", str::trim);
        check_path("target", target)?;
        let sources = match config.get("field").map(str::trim) {
            Some(field) => {
                check_path("field", field)?;
                vec![Source::new(field, target)]
            }
            None => ["user_agent", "userAgent", "ua"]
                .iter()
                .map(|path| Source::new(path, target))
                .collect(),
        };
        let parser = Parser::new();
        // Compiles the regexes of the common paths now rather than on the
        // first event.
        for ua in [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
        ] {
            let _ = parser.parse(ua);
        }
        Ok(UserAgent { sources, parser })
    }

    fn process(&mut self, _ctx: &BatchContext, event: &Event) -> Verdict {
        match self.enrich(event) {
            Some(edits) => Verdict::Edits(edits),
            None => Verdict::Keep,
        }
    }
}

export_filter!(UserAgent);

#[cfg(test)]
mod tests;
