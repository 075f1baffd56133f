use super::*;
use logway_filter_sdk::Value;

const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1";
const SAFARI_IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1";
const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";
const CHROME_ANDROID_PHONE: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36";
const CHROME_ANDROID_TABLET: &str = "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Safari/537.36";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const GOOGLEBOT_SMARTPHONE: &str = "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const CURL: &str = "curl/8.4.0";

fn parser() -> Parser {
    Parser::new()
}

fn filter(pairs: &[(&str, &str)]) -> Result<UserAgent, String> {
    let pairs = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    UserAgent::new(&Config::new(pairs))
}

/// The edits as (path, text or `None` for null).
fn sets(edits: Vec<Edit>) -> Vec<(String, Option<String>)> {
    edits
        .into_iter()
        .map(|edit| match edit {
            Edit::Set((path, Value::Text(s))) => (path, Some(s)),
            Edit::Set((path, Value::Null)) => (path, None),
            other => panic!("unexpected edit {other:?}"),
        })
        .collect()
}

fn expect(
    parsed: &Parsed,
    browser: Option<&str>,
    version: Option<&str>,
    os: Option<&str>,
    os_version: Option<&str>,
    device: Device,
) {
    assert_eq!(parsed.browser, browser, "{parsed:?}");
    assert_eq!(parsed.browser_version, version, "{parsed:?}");
    assert_eq!(parsed.os, os, "{parsed:?}");
    assert_eq!(parsed.os_version.as_deref(), os_version, "{parsed:?}");
    assert_eq!(parsed.device, device, "{parsed:?}");
}

// --- parsing real user agents ---

#[test]
fn chrome_on_windows() {
    let p = parse(&parser(), CHROME_WINDOWS);
    expect(
        &p,
        Some("Chrome"),
        Some("124.0.0.0"),
        Some("Windows"),
        Some("10"),
        Device::Desktop,
    );
}

#[test]
fn safari_on_iphone() {
    let p = parse(&parser(), SAFARI_IPHONE);
    expect(
        &p,
        Some("Safari"),
        Some("17.4.1"),
        Some("iOS"),
        Some("17.4.1"),
        Device::Mobile,
    );
}

#[test]
fn safari_on_ipad_is_a_tablet() {
    let p = parse(&parser(), SAFARI_IPAD);
    expect(
        &p,
        Some("Safari"),
        Some("16.6"),
        Some("iOS"),
        Some("16.6"),
        Device::Tablet,
    );
}

#[test]
fn firefox_on_linux() {
    let p = parse(&parser(), FIREFOX_LINUX);
    expect(
        &p,
        Some("Firefox"),
        Some("125.0"),
        Some("Linux"),
        None,
        Device::Desktop,
    );
}

#[test]
fn chrome_on_android_phone_and_tablet() {
    let p = parse(&parser(), CHROME_ANDROID_PHONE);
    expect(
        &p,
        Some("Chrome"),
        Some("124.0.6367.82"),
        Some("Android"),
        Some("14"),
        Device::Mobile,
    );
    let p = parse(&parser(), CHROME_ANDROID_TABLET);
    expect(
        &p,
        Some("Chrome"),
        Some("124.0.6367.82"),
        Some("Android"),
        Some("13"),
        Device::Tablet,
    );
}

#[test]
fn firefox_on_android_phone_and_tablet() {
    let phone = "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0";
    let tablet = "Mozilla/5.0 (Android 14; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0";
    assert_eq!(parse(&parser(), phone).device, Device::Mobile);
    assert_eq!(parse(&parser(), tablet).device, Device::Tablet);
}

#[test]
fn googlebot_is_a_bot() {
    let p = parse(&parser(), GOOGLEBOT);
    expect(&p, Some("Googlebot"), None, None, None, Device::Bot);
    // The smartphone crawler looks like Chrome on Android, but is a bot.
    assert_eq!(parse(&parser(), GOOGLEBOT_SMARTPHONE).device, Device::Bot);
    let bing = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)";
    assert_eq!(parse(&parser(), bing).device, Device::Bot);
    let gpt = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; +https://openai.com/gptbot)";
    assert_eq!(parse(&parser(), gpt).device, Device::Bot);
}

#[test]
fn curl_is_other() {
    let p = parse(&parser(), CURL);
    expect(&p, Some("curl"), Some("8.4.0"), None, None, Device::Other);
    let p = parse(&parser(), "Wget/1.21.4");
    expect(&p, Some("wget"), Some("1.21.4"), None, None, Device::Other);
}

#[test]
fn unknown_clients_name_themselves() {
    let p = parse(&parser(), "python-requests/2.31.0");
    expect(
        &p,
        Some("python-requests"),
        Some("2.31.0"),
        None,
        None,
        Device::Other,
    );
    let p = parse(&parser(), "okhttp/4.12.0 extra");
    expect(
        &p,
        Some("okhttp"),
        Some("4.12.0"),
        None,
        None,
        Device::Other,
    );
    let p = parse(&parser(), "SomeCrawler/1.0");
    assert_eq!(p.device, Device::Bot);
}

#[test]
fn other_platforms() {
    let mac = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15";
    let p = parse(&parser(), mac);
    expect(
        &p,
        Some("Safari"),
        Some("17.4"),
        Some("macOS"),
        Some("10.15.7"),
        Device::Desktop,
    );
    let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.67";
    assert_eq!(parse(&parser(), edge).browser, Some("Edge"));
    let chromebook = "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
    let p = parse(&parser(), chromebook);
    expect(
        &p,
        Some("Chrome"),
        Some("124.0.0.0"),
        Some("ChromeOS"),
        Some("14541.0.0"),
        Device::Desktop,
    );
    let ie = "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko";
    let p = parse(&parser(), ie);
    expect(
        &p,
        Some("Internet Explorer"),
        Some("11.0"),
        Some("Windows"),
        Some("7"),
        Device::Desktop,
    );
    let ps4 = "Mozilla/5.0 (PlayStation 4 11.00) AppleWebKit/605.1.15 (KHTML, like Gecko)";
    assert_eq!(parse(&parser(), ps4).device, Device::Other);
}

#[test]
fn garbage_user_agents_do_not_panic() {
    let long = "Mozilla/5.0 (".repeat(10_000);
    let nonascii = format!("{}é😀", "a".repeat(MAX_UA_BYTES - 1));
    for ua in [
        "",
        "-",
        "/",
        "a/",
        "/b",
        "(((((",
        "\u{0}\u{ffff}😀",
        "Mozilla/5.0 (compatible; MSIE",
        "Windows",
        "Mozilla/5.0 (Windows NT; Windows Phone",
        "KDDI- WILLCOM DDIPOCKET SymbianOS",
        long.as_str(),
        nonascii.as_str(),
    ] {
        let _ = parse(&parser(), ua);
    }
    assert_eq!(truncate(&nonascii, MAX_UA_BYTES).len(), MAX_UA_BYTES - 1);
}

// --- the filter ---

#[test]
fn enriches_json_events_under_the_target() {
    let f = filter(&[]).unwrap();
    let event = Event::json_text(&format!(r#"{{"user_agent":"{SAFARI_IPAD}","path":"/"}}"#));
    let edits = sets(f.enrich(&event).unwrap());
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        edits,
        [
            ("ua.browser".to_string(), s("Safari")),
            ("ua.browser_version".to_string(), s("16.6")),
            ("ua.os".to_string(), s("iOS")),
            ("ua.os_version".to_string(), s("16.6")),
            ("ua.device".to_string(), s("tablet")),
        ]
    );
    let mut f = f;
    assert!(matches!(
        f.process(&BatchContext::for_test("web"), &event),
        Verdict::Edits(ref e) if e.len() == 5
    ));
}

#[test]
fn unknown_parts_are_null() {
    let f = filter(&[]).unwrap();
    let event = Event::json_text(&format!(r#"{{"user_agent":"{CURL}"}}"#));
    let edits = sets(f.enrich(&event).unwrap());
    assert_eq!(
        edits[0],
        ("ua.browser".to_string(), Some("curl".to_string()))
    );
    assert_eq!(edits[2], ("ua.os".to_string(), None));
    assert_eq!(
        edits[4],
        ("ua.device".to_string(), Some("other".to_string()))
    );
}

#[test]
fn default_field_has_fallbacks() {
    let f = filter(&[]).unwrap();
    let camel = Event::json_text(&format!(r#"{{"userAgent":"{GOOGLEBOT}"}}"#));
    let edits = sets(f.enrich(&camel).unwrap());
    assert_eq!(edits[4], ("ua.device".to_string(), Some("bot".to_string())));

    // The string at `ua` is not overwritten: results go beside it.
    let short = Event::json_text(&format!(r#"{{"ua":"{CHROME_WINDOWS}"}}"#));
    let edits = sets(f.enrich(&short).unwrap());
    assert_eq!(
        edits[0],
        ("ua_parsed.browser".to_string(), Some("Chrome".to_string()))
    );

    // `user_agent` wins over the others.
    let both = Event::json_text(&format!(
        r#"{{"ua":"{CURL}","user_agent":"{FIREFOX_LINUX}"}}"#
    ));
    let edits = sets(f.enrich(&both).unwrap());
    assert_eq!(
        edits[0],
        ("ua.browser".to_string(), Some("Firefox".to_string()))
    );
}

#[test]
fn configured_field_and_target() {
    let f = filter(&[("field", "http.headers.ua"), ("target", "client.agent")]).unwrap();
    let nested = Event::json_text(&format!(
        r#"{{"http":{{"headers":{{"ua":"{CHROME_ANDROID_PHONE}"}}}}}}"#
    ));
    let edits = sets(f.enrich(&nested).unwrap());
    assert_eq!(
        edits[4],
        (
            "client.agent.device".to_string(),
            Some("mobile".to_string())
        )
    );
    // A set field has no fallbacks.
    let other = Event::json_text(&format!(r#"{{"user_agent":"{CHROME_WINDOWS}"}}"#));
    assert!(f.enrich(&other).is_none());

    let f = filter(&[("field", "agent"), ("target", "agent.parsed")]).unwrap();
    let event = Event::json_text(&format!(r#"{{"agent":"{CURL}"}}"#));
    assert_eq!(sets(f.enrich(&event).unwrap())[0].0, "agent_parsed.browser");
}

#[test]
fn config_errors_name_the_key() {
    let err = filter(&[("field", "a..b")]).err().unwrap();
    assert!(err.contains("`field`"), "{err}");
    let err = filter(&[("target", "")]).err().unwrap();
    assert!(err.contains("`target`"), "{err}");
}

#[test]
fn events_without_a_user_agent_are_kept() {
    let mut f = filter(&[]).unwrap();
    let ctx = BatchContext::for_test("web");
    let mut bytes = Event::json_text("");
    bytes.raw = vec![0xff, 0x00, b'{'];
    for event in [
        Event::text(CHROME_WINDOWS),
        Event::json_text(r#"{"path":"/"}"#),
        Event::json_text(r#"{"user_agent":""}"#),
        Event::json_text(r#"{"user_agent":"  -  "}"#),
        Event::json_text(r#"{"user_agent":42}"#),
        Event::json_text(r#"{"user_agent":{"name":"Chrome"}}"#),
        Event::json_text(r#"{"user_agent":null}"#),
        Event::json_text("not json"),
        Event::json_text("[]"),
        bytes,
    ] {
        assert!(
            matches!(f.process(&ctx, &event), Verdict::Keep),
            "{event:?}"
        );
    }
}
