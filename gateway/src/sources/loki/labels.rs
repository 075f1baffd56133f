//! A stream's label set as Loki's protobuf carries it: `{job="api",
//! level="info"}`.
//!
//! Read leniently, as clients write it: values may escape `\"`, `\\` and
//! `\n`; some clients (winston-loki) do not escape at all, so a `"` ends a
//! value only where a `,` or the closing `}` follows it.

/// The pairs in order, or what is wrong with the text.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let t = text.trim();
    let inner = t
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| format!("labels `{}` are not `{{name=\"value\", ...}}`", clip(t)))?;
    let chars: Vec<char> = inner.chars().collect();
    let mut pairs = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
            i += 1;
        }
        if i == chars.len() {
            return Ok(pairs);
        }
        let start = i;
        while i < chars.len() && chars[i] != '=' {
            i += 1;
        }
        let name: String = chars[start..i]
            .iter()
            .collect::<String>()
            .trim()
            .to_string();
        let valid = name
            .chars()
            .enumerate()
            .all(|(k, c)| c == '_' || c.is_ascii_alphabetic() || (k > 0 && c.is_ascii_digit()));
        if i == chars.len() || name.is_empty() || !valid {
            return Err(format!("labels `{}`: expected name=\"value\"", clip(t)));
        }
        i += 1;
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if chars.get(i) != Some(&'"') {
            return Err(format!(
                "labels `{}`: the value of `{name}` is not quoted",
                clip(t)
            ));
        }
        i += 1;
        let mut value = String::new();
        loop {
            match chars.get(i) {
                None => {
                    return Err(format!(
                        "labels `{}`: the value of `{name}` is not closed",
                        clip(t)
                    ));
                }
                Some('\\') if i + 1 < chars.len() => {
                    value.push(match chars[i + 1] {
                        'n' => '\n',
                        't' => '\t',
                        c => c,
                    });
                    i += 2;
                }
                Some('"') => {
                    let mut j = i + 1;
                    while j < chars.len() && chars[j].is_whitespace() {
                        j += 1;
                    }
                    i += 1;
                    if j == chars.len() || chars[j] == ',' {
                        break;
                    }
                    value.push('"');
                }
                Some(&c) => {
                    value.push(c);
                    i += 1;
                }
            }
        }
        pairs.push((name, value));
    }
}

fn clip(s: &str) -> &str {
    match s.char_indices().nth(200) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn reads_what_clients_write() {
        assert_eq!(
            parse(r#"{job="api", level="info"}"#).unwrap(),
            pairs(&[("job", "api"), ("level", "info")])
        );
        assert_eq!(parse("{}").unwrap(), pairs(&[]));
        // Escaped, as Promtail and python-logging-loki write it.
        assert_eq!(
            parse(r#"{msg="say \"hi\"\n", path="C:\\x"}"#).unwrap(),
            pairs(&[("msg", "say \"hi\"\n"), ("path", "C:\\x")])
        );
        // Not escaped, as winston-loki writes it.
        assert_eq!(
            parse(r#"{level="info",note="a "quoted" word",job="w"}"#).unwrap(),
            pairs(&[
                ("level", "info"),
                ("note", "a \"quoted\" word"),
                ("job", "w")
            ])
        );
        assert_eq!(
            parse(r#"{a="x,y", b="}"}"#).unwrap(),
            pairs(&[("a", "x,y"), ("b", "}")])
        );
    }

    #[test]
    fn refuses_what_is_not_a_label_set() {
        for bad in [
            "job=api",
            "{job=api}",
            "{job=\"api}",
            "{=\"x\"}",
            "{9a=\"x\"}",
            "{a b=\"x\"}",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
