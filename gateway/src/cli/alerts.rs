//! `logway alert …`: the alert rules API of a running gateway from the
//! command line (`docs/guides/alerts.md`). Rules are files: one JSON rule,
//! a JSON array of rules, or a TOML file of `[[rules]]` tables.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::Value;

use super::Remote;
use super::client::call;

#[derive(Subcommand)]
pub enum AlertCommand {
    /// List the tenant's rules with their state, last evaluation and alerts.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Show one rule.
    Get {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Create or replace the rules of a file (JSON rule, JSON array, or
    /// TOML `[[rules]]`).
    Apply {
        file: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// Delete a rule; its firing alerts are resolved at the receivers.
    Delete {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Hold back a rule's notifications until a time (`now+2h`, RFC 3339).
    Mute {
        name: String,
        #[arg(long)]
        until: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// End a rule's mute.
    Unmute {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Evaluate the rule of a file now over a range, notifying nobody;
    /// prints what each group counts and whether the rule would fire.
    Test {
        file: PathBuf,
        /// Start (default: the rule's window before `--to`).
        #[arg(long)]
        from: Option<String>,
        /// End (default: now).
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

/// The rules a file holds.
fn rules_of(file: &Path) -> anyhow::Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let value: Value = if file.extension().is_some_and(|e| e == "toml") {
        let table: toml::Table =
            toml::from_str(&text).with_context(|| format!("{} is not TOML", file.display()))?;
        let value = serde_json::to_value(table)?;
        match value.get("rules") {
            Some(rules) => rules.clone(),
            None => bail!("{}: no [[rules]] tables", file.display()),
        }
    } else {
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?
    };
    match value {
        Value::Array(rules) => Ok(rules),
        rule @ Value::Object(_) => Ok(vec![rule]),
        _ => bail!("{}: expected a rule or a list of rules", file.display()),
    }
}

pub async fn run(command: AlertCommand) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let base =
        |remote: &Remote| format!("{}/api/v1/alerts/rules", remote.url.trim_end_matches('/'));
    let named = |remote: &Remote, name: &str| {
        format!(
            "{}/{}",
            base(remote),
            percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
        )
    };
    let (body, _remote) = match command {
        AlertCommand::List { remote } => (
            call(
                client.get(base(&remote)),
                remote.key.as_deref(),
                &remote.url,
            )
            .await?,
            remote,
        ),
        AlertCommand::Get { name, remote } => (
            call(
                client.get(named(&remote, &name)),
                remote.key.as_deref(),
                &remote.url,
            )
            .await?,
            remote,
        ),
        AlertCommand::Apply { file, remote } => {
            let rules = rules_of(&file)?;
            for rule in &rules {
                let name = rule["name"].as_str().context("every rule needs a `name`")?;
                let req = client.put(named(&remote, name)).json(rule);
                call(req, remote.key.as_deref(), &remote.url)
                    .await
                    .with_context(|| format!("rule `{name}`"))?;
                eprintln!("applied rule `{name}`");
            }
            (Value::Null, remote)
        }
        AlertCommand::Delete { name, remote } => (
            call(
                client.delete(named(&remote, &name)),
                remote.key.as_deref(),
                &remote.url,
            )
            .await?,
            remote,
        ),
        AlertCommand::Mute {
            name,
            until,
            remote,
        } => {
            let req = client
                .post(format!("{}/mute", named(&remote, &name)))
                .json(&serde_json::json!({ "until": until }));
            (call(req, remote.key.as_deref(), &remote.url).await?, remote)
        }
        AlertCommand::Unmute { name, remote } => {
            let req = client.delete(format!("{}/mute", named(&remote, &name)));
            (call(req, remote.key.as_deref(), &remote.url).await?, remote)
        }
        AlertCommand::Test {
            file,
            from,
            to,
            remote,
        } => {
            let mut rules = rules_of(&file)?;
            if rules.len() != 1 {
                bail!("{}: `test` takes a file of one rule", file.display());
            }
            let url = format!("{}/api/v1/alerts/test", remote.url.trim_end_matches('/'));
            let req = client.post(url).json(&serde_json::json!({
                "rule": rules.remove(0), "from": from, "to": to,
            }));
            (call(req, remote.key.as_deref(), &remote.url).await?, remote)
        }
    };
    if !body.is_null() {
        println!("{}", serde_json::to_string_pretty(&body)?);
    }
    Ok(())
}
