//! The config's own tests, and the key table of `docs/configuration.md`
//! checked against what the config accepts.

use super::*;
use std::time::Duration;

#[test]
fn embedded_defaults_are_a_working_single_node() {
    let c = Config::load_with_env(None, Vec::new()).unwrap();
    assert_eq!(
        c.server.http_addr.to_string(),
        crate::server::config::DEFAULT_HTTP_ADDR
    );
    assert!(c.open_mode());
    assert_eq!(c.tenants[0].name, crate::tenants::config::DEFAULT_TENANT);
}

#[test]
fn unknown_key_is_an_error_naming_the_key() {
    let err = Config::from_toml("[[tenants]]\nname = \"a\"\nrouts = []\n").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("tenants[0]") && text.contains("routs"),
        "{text}"
    );
    let err = Config::from_toml("[server]\nhttp_adr = \"127.0.0.1:1\"\n").unwrap_err();
    assert!(err.to_string().contains("http_adr"), "{err}");
}

#[test]
fn cluster_mode_refuses_bad_peers_and_properties_logway_sets() {
    let c = Config::from_toml("[cluster]\nenabled = true\nbrokers = \"k1:9092\"\n").unwrap();
    use crate::cluster::Role;
    assert_eq!(
        c.cluster.roles,
        vec![Role::Gateway, Role::Indexer, Role::Archiver, Role::Searcher]
    );
    let err = Config::from_toml("[cluster]\nenabled = true\nroles = [\"gateway\", \"router\"]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("router"), "{err}");
    let ok = "[cluster]\nenabled = true\npeers = [\"http://10.0.0.2:8080\", \"dns:logway:8080\"]\n";
    assert_eq!(Config::from_toml(ok).unwrap().cluster.peers.len(), 2);
    let err = Config::from_toml("[cluster]\nenabled = true\npeers = [\"10.0.0.2:8080\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cluster.peers") && err.contains("10.0.0.2:8080"),
        "{err}"
    );
    let err = Config::from_toml("[cluster]\nenabled = true\nclient = { \"group.id\" = \"g\" }\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("cluster.client.group.id"), "{err}");
    let err = Config::from_toml("[cluster]\nenabled = true\nclient = { acks = \"1\" }\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("cluster.client.acks"), "{err}");
    // Off, the section is not checked: the single node ignores it.
    assert!(Config::from_toml("[cluster]\nroles = [\"indexer\"]\n").is_ok());
}

#[test]
fn wal_compression_is_zstd_unless_set_to_none() {
    assert!(Config::from_toml("").unwrap().wal.compress());
    let c = Config::from_toml("[wal]\ncompression = \"none\"\n").unwrap();
    assert!(!c.wal.compress());
    let err = Config::from_toml("[wal]\ncompression = \"lz4\"\n").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("wal.compression") && text.contains("lz4"),
        "{text}"
    );
}

#[test]
fn environment_overrides_the_file() {
    let env = vec![
        (
            "LOGWAY_SERVER__MAX_CONNECTIONS".to_string(),
            "7".to_string(),
        ),
        (
            "LOGWAY_HOT__COMMIT_INTERVAL".to_string(),
            "250ms".to_string(),
        ),
        ("LOGWAY_STORAGE__DATA_DIR".to_string(), "/tmp/x".to_string()),
        ("UNRELATED".to_string(), "1".to_string()),
    ];
    let c = Config::load_with_env(None, env).unwrap();
    assert_eq!(c.server.max_connections, 7);
    assert_eq!(c.hot.commit_interval, Duration::from_millis(250));
    assert_eq!(c.storage.data_dir, PathBuf::from("/tmp/x"));
    let bad = vec![("LOGWAY_SERVER__NOPE".to_string(), "1".to_string())];
    assert!(
        Config::load_with_env(None, bad)
            .unwrap_err()
            .to_string()
            .contains("nope")
    );
}

#[test]
fn refuses_network_address_without_keys() {
    let err = Config::from_toml("[server]\nhttp_addr = \"0.0.0.0:8080\"\n").unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
    let ok = Config::from_toml(
        "[server]\nhttp_addr = \"0.0.0.0:8080\"\n[[tenants]]\nname = \"a\"\ningest_keys = [\"abcdefgh\"]\n",
    );
    assert!(ok.is_ok());
}

#[test]
fn a_syslog_listener_must_be_explicitly_unauthenticated() {
    let base = "[[tenants]]\nname = \"default\"\n[[syslog]]\naddr = \"127.0.0.1:5514\"\ntenant = \"default\"\ntype = \"syslog\"\n";
    let err = Config::from_toml(base).unwrap_err();
    assert!(
        err.to_string().contains("syslog[0].unauthenticated"),
        "{err}"
    );
    Config::from_toml(&format!("{base}unauthenticated = true\n")).unwrap();
    let err = Config::from_toml(&format!(
        "{base}unauthenticated = true\nfilters = [{{ name = \"Bad Name\" }}]\n"
    ))
    .unwrap_err();
    assert!(
        err.to_string().contains("syslog[0].filters[0].name"),
        "{err}"
    );
    let ok = Config::from_toml(&format!(
        "{base}unauthenticated = true\nfilters = [{{ name = \"openssh\", config = {{ year = 2017 }} }}]\n"
    ))
    .unwrap();
    assert_eq!(
        ok.syslog[0].filters[0].config,
        [("year".into(), "2017".into())]
    );
}

#[test]
fn a_certificate_name_belongs_to_one_tenant_and_nice_is_0_to_19() {
    let two = |a: &str, b: &str| {
        format!(
            "[[tenants]]\nname = \"a\"\ningest_cert_names = [\"{a}\"]\n[[tenants]]\nname = \"b\"\ningest_cert_names = [\"{b}\"]\n"
        )
    };
    let err = Config::from_toml(&two("x.example", "x.example")).unwrap_err();
    assert!(
        err.to_string().contains("tenants[1].ingest_cert_names"),
        "{err}"
    );
    let ok = Config::from_toml(&two("x.example", "y.example")).unwrap();
    assert!(!ok.open_mode(), "certificate names are credentials");
    for bad in [-1, 20] {
        let text = format!("[server]\nbackground_nice = {bad}\n");
        let err = Config::from_toml(&text).unwrap_err();
        assert!(err.to_string().contains("server.background_nice"), "{err}");
    }
    let text = "[server]\nbackground_nice = 0\n";
    assert_eq!(Config::from_toml(text).unwrap().server.background_nice, 0);
}

#[test]
fn retention_is_the_types_else_the_tenants_else_the_default() {
    let c = Config::from_toml(
        r#"
[hot]
retention = "7d"
retention_by_type = { debug_logs = "1d" }
[archive]
retention_by_type = { audit = "400d" }
[[tenants]]
name = "a"
ingest_keys = ["a-ingest-key-0001"]
hot_retention = "3d"
cold_retention = "30d"
[[tenants]]
name = "b"
ingest_keys = ["b-ingest-key-0001"]
"#,
    )
    .unwrap();
    let day = Duration::from_secs(86_400);
    assert_eq!(c.hot.retention_for("a", "debug_logs"), day);
    assert_eq!(c.hot.retention_for("a", "web_logs"), 3 * day);
    assert_eq!(c.hot.retention_for("b", "web_logs"), 7 * day);
    assert_eq!(c.archive.retention_for("a", "audit"), Some(400 * day));
    assert_eq!(c.archive.retention_for("a", "web_logs"), Some(30 * day));
    assert_eq!(c.archive.retention_for("b", "web_logs"), None);
}

/// The image's config holds no keys: it is refused until keys come
/// from the environment (or a mounted file replaces it).
#[test]
fn container_config_needs_keys_from_the_environment() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/container.toml"
    ));
    let text = std::fs::read_to_string(path).unwrap();
    assert!(!text.contains("_keys ="), "no keys in the image");
    let err = Config::load_with_env(Some(path), Vec::new()).unwrap_err();
    assert!(err.to_string().contains("not a loopback address"), "{err}");
    let env = vec![
        (
            "LOGWAY_TENANTS__0__INGEST_KEYS".to_string(),
            r#"["container-ingest-key-1"]"#.to_string(),
        ),
        (
            "LOGWAY_TENANTS__0__ADMIN_KEYS".to_string(),
            r#"["container-admin-key-01"]"#.to_string(),
        ),
    ];
    let c = Config::load_with_env(Some(path), env).unwrap();
    assert_eq!(c.server.http_addr.to_string(), "0.0.0.0:8080");
    assert!(!c.open_mode());
    assert_eq!(c.tenants[0].admin_keys[0].0, "container-admin-key-01");
}

#[test]
fn example_config_is_valid() {
    let text = include_str!("../../../examples/logway.toml");
    Config::from_toml(text).unwrap();
}

/// One step of a key path: a table, or an array of tables.
#[derive(Clone)]
enum Step {
    Table(String),
    Array(String),
}

/// A TOML document holding `leaf` at `path` (arrays of one table).
fn nest(path: &[Step], leaf: toml::Value) -> toml::Table {
    let mut value = leaf;
    for step in path.iter().rev() {
        let (name, inner) = match step {
            Step::Table(n) => (n, value),
            Step::Array(n) => (n, toml::Value::Array(vec![value])),
        };
        let mut t = toml::Table::new();
        t.insert(name.clone(), inner);
        value = toml::Value::Table(t);
    }
    match value {
        toml::Value::Table(t) => t,
        _ => unreachable!("a path ends in a table"),
    }
}

/// The fields of the table at `path` if it is one: serde names them when
/// it meets an unknown one.
fn fields_at(path: &[Step]) -> Option<Vec<String>> {
    let mut probe = toml::Table::new();
    probe.insert("__probe__".into(), toml::Value::Integer(1));
    let doc = if path.is_empty() {
        probe
    } else {
        nest(path, toml::Value::Table(probe))
    };
    let message = Config::from_table(doc).err()?.to_string();
    if !message.contains("unknown field `__probe__`") {
        return None;
    }
    // "… expected one of `a`, `b`" (toml adds "\nin `section`").
    let expected = message
        .split_once("expected")
        .map_or("", |(_, e)| e.lines().next().unwrap_or(""));
    Some(
        expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect(),
    )
}

/// Every key the config accepts, as `a.b`, `a[].b`: a table's keys below
/// it, a map (per-type retention, a filter's config) as one key.
fn accepted_keys(path: &mut Vec<Step>, prefix: &str, out: &mut Vec<String>) {
    for field in fields_at(path).expect("a table") {
        let key = if prefix.is_empty() {
            field.clone()
        } else {
            format!("{prefix}.{field}")
        };
        let mut nested = false;
        for (step, suffix) in [
            (Step::Table(field.clone()), ""),
            (Step::Array(field.clone()), "[]"),
        ] {
            path.push(step);
            if fields_at(path).is_some() {
                accepted_keys(path, &format!("{key}{suffix}"), out);
                nested = true;
            }
            path.pop();
            if nested {
                break;
            }
        }
        if !nested {
            out.push(key);
        }
    }
}

/// `docs/configuration.md`'s key table lists exactly the keys the config
/// accepts. A row may stand for a table of keys (a rate limit, a filter
/// list, field names) when its text names each key of that table.
#[test]
fn the_documented_key_table_is_every_key_the_config_accepts() {
    let mut accepted = Vec::new();
    accepted_keys(&mut Vec::new(), "", &mut accepted);
    assert!(
        accepted.contains(&"tenants[].routes[].path".to_string()),
        "{accepted:?}"
    );
    assert!(
        accepted.contains(&"archive.s3.bucket".to_string()),
        "{accepted:?}"
    );
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/configuration.md"
    ))
    .unwrap();
    // Rows: | `key` | default | meaning |; `<type>` stands for a map's keys.
    let rows: Vec<(String, String)> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| {
            let (key, rest) = l.split_once('`')?;
            let key = key
                .split('.')
                .filter(|seg| !seg.starts_with('<'))
                .collect::<Vec<_>>()
                .join(".");
            Some((key, rest.to_string()))
        })
        .collect();
    let documented = |key: &str| {
        rows.iter().any(|(k, text)| {
            k == key
                || key.strip_prefix(k.as_str()).is_some_and(|rest| {
                    // A row for a table names its keys: `{ a, b, … }`.
                    let sub = rest.trim_start_matches("[]").trim_start_matches('.');
                    let first = sub.split(['.', '[']).next().unwrap_or(sub);
                    (rest.starts_with('.') || rest.starts_with("[].")) && text.contains(first)
                })
        })
    };
    let undocumented: Vec<&String> = accepted.iter().filter(|k| !documented(k)).collect();
    assert!(
        undocumented.is_empty(),
        "keys the config accepts that docs/configuration.md does not list: {undocumented:?}"
    );
    let unknown: Vec<&String> = rows
        .iter()
        .map(|(k, _)| k)
        .filter(|k| {
            !accepted.iter().any(|a| {
                a == *k || a.starts_with(&format!("{k}.")) || a.starts_with(&format!("{k}[]."))
            })
        })
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/configuration.md lists keys the config does not accept: {unknown:?}"
    );
}

#[test]
fn webhooks_are_for_event_routes_one_per_type_and_remote_write_names_a_tenant() {
    let routes = |r: &str| {
        format!("[[tenants]]\nname = \"a\"\ningest_keys = [\"key-0001-abcd\"]\nroutes = [{r}]\n")
    };
    let hook = r#"webhook = { url = "http://127.0.0.1:9/h" }"#;
    let err = Config::from_toml(&routes(&format!(
        r#"{{ path = "/p", type = "pay", {hook} }}"#
    )))
    .unwrap_err();
    assert!(err.to_string().contains("class = \"event\""), "{err}");
    let err = Config::from_toml(&routes(&format!(
        r#"{{ path = "/p", type = "pay", class = "event", {hook} }}, {{ path = "/q", type = "pay", class = "event", {hook} }}"#
    )))
    .unwrap_err();
    assert!(err.to_string().contains("already has a webhook"), "{err}");
    let err = Config::from_toml(&routes(
        r#"{ path = "/p", type = "pay", class = "event", webhook = { url = "ftp://x" } }"#,
    ))
    .unwrap_err();
    assert!(err.to_string().contains("not an http(s) URL"), "{err}");
    assert!(
        Config::from_toml(&routes(&format!(
            r#"{{ path = "/p", type = "pay", class = "event", {hook} }}"#
        )))
        .is_ok()
    );
    let err = Config::from_toml(&format!(
        "{}[[metrics.remote_write]]\nurl = \"http://x/api/v1/write\"\ntenant = \"nobody\"\n",
        routes("")
    ))
    .unwrap_err();
    assert!(err.to_string().contains("no tenant `nobody`"), "{err}");
}
