//! What a filter declares about itself, read from its component's bytes.
//!
//! The SDK's `export_filter!` writes the custom section
//! `logway-filter-drops` (one byte, `1` or `0`: whether the filter may
//! answer `drop`). A route of the `event` class refuses a filter that may
//! drop (events are never dropped); a component without the section is
//! taken to drop.

use std::fmt;

use super::FilterRef;

/// The custom section's name.
pub const DROPS_SECTION: &str = "logway-filter-drops";

/// Whether a component (or module) may drop events: `false` only when
/// it declares that it never does; anything unreadable may.
pub fn may_drop(bytes: &[u8]) -> bool {
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else { break };
        if let wasmparser::Payload::CustomSection(reader) = payload
            && reader.name() == DROPS_SECTION
        {
            return reader.data() != b"0";
        }
    }
    true
}

/// An event-class route or listener whose chain holds a filter that may drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppingOnEventRoute {
    pub tenant: String,
    pub filter: String,
    pub routes: Vec<String>,
}

impl fmt::Display for DroppingOnEventRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "filter `{}` of tenant `{}` may drop events and is in the chain of event-class route(s) {}: events are never dropped, so remove it from those chains (or give the filter `const DROPS_EVENTS: bool = false` if it never drops)",
            self.filter,
            self.tenant,
            self.routes.join(", ")
        )
    }
}

/// A filter chain: a route's (by path) or a listener's (`syslog:{addr}`,
/// `beats:{addr}`, `gelf:{addr}`, `kafka:{topics}`), as
/// `crate::tenants::Tenants::chains` lists them (the event-class ones:
/// `event_chains`).
#[derive(Debug, Clone)]
pub struct Chain {
    pub tenant: String,
    pub name: String,
    pub filters: Vec<FilterRef>,
}

/// Whether a filter that [`may_drop`] may be uploaded as `tenant`'s
/// `filter`: not if it may and an event chain names it.
pub fn check_upload(
    chains: &[Chain],
    tenant: &str,
    filter: &str,
    may_drop: bool,
) -> Result<(), DroppingOnEventRoute> {
    let routes: Vec<String> = chains
        .iter()
        .filter(|c| c.tenant == tenant && c.filters.iter().any(|f| f.name == filter))
        .map(|c| c.name.clone())
        .collect();
    if may_drop && !routes.is_empty() {
        return Err(DroppingOnEventRoute {
            tenant: tenant.to_string(),
            filter: filter.to_string(),
            routes,
        });
    }
    Ok(())
}

/// At start and at a config reload: every filter an event chain names
/// that is uploaded and may drop is a configuration error. (One not
/// uploaded yet is checked at its upload.)
pub fn check_event_routes(
    registry: &super::Registry,
    chains: &[Chain],
) -> Result<(), DroppingOnEventRoute> {
    for c in chains {
        for f in &c.filters {
            if let Some(loaded) = registry.get(&c.tenant, &f.name) {
                check_upload(chains, &c.tenant, &f.name, loaded.meta.may_drop)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module with one custom section, as `wasm-encoder` would write it.
    fn module_with(name: &str, data: &[u8]) -> Vec<u8> {
        let mut body = vec![name.len() as u8];
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(data);
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        m.push(0); // custom section id
        m.push(body.len() as u8);
        m.extend(body);
        m
    }

    #[test]
    fn reads_the_declaration_and_defaults_to_may_drop() {
        assert!(!may_drop(&module_with(DROPS_SECTION, b"0")));
        assert!(may_drop(&module_with(DROPS_SECTION, b"1")));
        assert!(may_drop(&module_with("other", b"0")));
        assert!(may_drop(b"not wasm"));
    }
}
