//! `LOGWAY_<SECTION>__<KEY>` environment overrides, applied to the TOML
//! table before it is deserialized: double underscore between levels,
//! array items by index (`LOGWAY_TENANTS__0__INGEST_KEYS`), values read as
//! TOML literals where they parse, else as strings.

pub const ENV_PREFIX: &str = "LOGWAY_";

/// Applies every `LOGWAY_*` variable of `env` to `table`; an error names
/// the variable.
pub fn apply(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), super::ConfigError> {
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let keys: Vec<String> = rest.split("__").map(|k| k.to_ascii_lowercase()).collect();
        apply_override(table, &keys, &raw).map_err(|message| super::ConfigError::Key {
            key: name.clone(),
            message,
        })?;
    }
    Ok(())
}

fn apply_override(table: &mut toml::Table, keys: &[String], raw: &str) -> Result<(), String> {
    let (last, parents) = keys.split_last().ok_or("empty key")?;
    let mut cursor: Option<&mut toml::Value> = None;
    for key in parents {
        let next = match cursor.take() {
            None => table
                .entry(key.clone())
                .or_insert_with(|| toml::Value::Table(Default::default())),
            Some(toml::Value::Table(t)) => t
                .entry(key.clone())
                .or_insert_with(|| toml::Value::Table(Default::default())),
            Some(toml::Value::Array(a)) => {
                let i: usize = key
                    .parse()
                    .map_err(|_| format!("`{key}` must be an array index"))?;
                a.get_mut(i)
                    .ok_or_else(|| format!("array index {i} is out of range"))?
            }
            Some(_) => return Err(format!("`{key}` is below a value that is not a table")),
        };
        cursor = Some(next);
    }
    let value = parse_env_value(raw);
    match cursor {
        None => {
            table.insert(last.clone(), value);
        }
        Some(toml::Value::Table(t)) => {
            t.insert(last.clone(), value);
        }
        Some(toml::Value::Array(a)) => {
            let i: usize = last
                .parse()
                .map_err(|_| format!("`{last}` must be an array index"))?;
            *a.get_mut(i)
                .ok_or_else(|| format!("array index {i} is out of range"))? = value;
        }
        Some(_) => return Err(format!("`{last}` is below a value that is not a table")),
    }
    Ok(())
}

fn parse_env_value(raw: &str) -> toml::Value {
    // `x = <raw>` parses numbers, booleans and arrays; anything else is a string.
    match toml::from_str::<toml::Table>(&format!("x = {raw}")) {
        Ok(mut t) => t
            .remove("x")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}
