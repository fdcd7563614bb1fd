//! The serde mirror of the TOML file, 1:1 with interface.md. Unknown keys are errors; every leaf that
//! compile may complain about is `Spanned` so its diagnostic points at FILE:LINE:COL.
//!
//! Each table entry is wrapped in `Lenient`, so that a type error or unknown key in one upstream,
//! policy or route is recorded and the rest of the file is still read: one run reports every error.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

/// A table entry that may have failed to deserialize; the error is kept instead of aborting the file.
#[derive(Debug)]
pub enum Lenient<T> {
    /// Read fine.
    Ok(T),
    /// serde's message (e.g. "unknown field `x`, expected ...").
    Err(String),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Catching the error here is sound: the entry's value was handed to us whole, so the parent
        // map carries on with its next key.
        match T::deserialize(d) {
            Ok(v) => Ok(Lenient::Ok(v)),
            Err(e) => Ok(Lenient::Err(e.to_string())),
        }
    }
}

/// A table entry with its position.
pub type Entry<T> = Spanned<Lenient<T>>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[server]`.
    pub server: Option<Entry<RawServer>>,
    /// `[log]`.
    pub log: Option<Entry<RawLog>>,
    /// `[upstreams.NAME]`.
    #[serde(default)]
    pub upstreams: BTreeMap<Spanned<String>, Entry<RawUpstream>>,
    /// `[policies.NAME]`.
    #[serde(default)]
    pub policies: BTreeMap<Spanned<String>, Entry<RawPolicy>>,
    /// `[[routes]]`.
    #[serde(default)]
    pub routes: Vec<Entry<RawRoute>>,
}

/// `listen`: one address or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Listen {
    /// `listen = "0.0.0.0:8080"`.
    One(String),
    /// `listen = ["127.0.0.1:8080", "[::1]:8080"]`.
    Many(Vec<String>),
}

/// `[server]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Listen addresses.
    pub listen: Option<Spanned<Listen>>,
    /// Admin address.
    pub admin: Option<Spanned<String>>,
    /// TLS files.
    pub tls: Option<Spanned<RawTls>>,
    /// Duration.
    pub header_read_timeout: Option<Spanned<String>>,
    /// Connection limit.
    pub max_connections: Option<Spanned<i64>>,
    /// Duration.
    pub idle_timeout: Option<Spanned<String>>,
    /// Duration.
    pub shutdown_grace: Option<Spanned<String>>,
    /// Reload on file change.
    pub watch_config: Option<bool>,
}

/// `tls = { cert, key }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM chain path.
    pub cert: Spanned<String>,
    /// PEM key path.
    pub key: Spanned<String>,
}

/// `[log]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// pretty | json.
    pub format: Option<Spanned<String>>,
    /// Level filter.
    pub level: Option<Spanned<String>>,
    /// Access log on/off.
    pub access_log: Option<bool>,
}

/// `[upstreams.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// http(s)://host[:port][/base].
    pub url: Spanned<String>,
    /// Duration.
    pub connect_timeout: Option<Spanned<String>>,
    /// Duration.
    pub timeout: Option<Spanned<String>>,
    /// Private CA path.
    pub ca_file: Option<Spanned<String>>,
    /// Keep the client's Host.
    pub preserve_host: Option<bool>,
}

/// `[policies.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// Origin patterns.
    #[serde(default)]
    pub allowed_origins: Vec<Spanned<String>>,
    /// Regexes, anchored at both ends.
    #[serde(default)]
    pub allowed_origin_regex: Vec<Spanned<String>>,
    /// Methods (default GET, HEAD, POST).
    pub allowed_methods: Option<Vec<Spanned<String>>>,
    /// Request headers.
    #[serde(default)]
    pub allowed_headers: Vec<Spanned<String>>,
    /// Response headers readable by script.
    #[serde(default)]
    pub expose_headers: Vec<Spanned<String>>,
    /// Credentials.
    pub allow_credentials: Option<Spanned<bool>>,
    /// Seconds.
    pub max_age: Option<Spanned<i64>>,
    /// Private Network Access preflights.
    pub allow_private_network: Option<bool>,
    /// 200 or 204.
    pub preflight_status: Option<Spanned<i64>>,
    /// block | headers-only | report-only.
    pub enforcement: Option<Spanned<String>>,
}

/// `[[routes]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Name for logs and metrics.
    pub name: Option<Spanned<String>>,
    /// Exact or `*.` host.
    pub host: Option<Spanned<String>>,
    /// Segment-aware prefix.
    pub path_prefix: Option<Spanned<String>>,
    /// Remove the prefix before forwarding.
    pub strip_prefix: Option<bool>,
    /// Origins this route is publicly served at.
    #[serde(default)]
    pub own_origins: Vec<Spanned<String>>,
    /// Upstream name.
    pub upstream: Spanned<String>,
    /// Policy name.
    pub policy: Spanned<String>,
}
