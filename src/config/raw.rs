//! The serde mirror of the TOML file, 1:1 with docs/configuration.md. Unknown keys are errors; every leaf that
//! compile may complain about is `Spanned` so its diagnostic points at FILE:LINE:COL.
//!
//! Each table entry is wrapped in `Lenient`, so that a type error or unknown key in one upstream,
//! policy or route is recorded and the rest of the file is still read: one run reports every error.
//!
//! The same types derive `JsonSchema` (see [`super::schema`]): the doc comments below are the
//! schema's descriptions, and `#[schemars(with = ...)]` names the type a `Spanned`/`Lenient` leaf
//! holds, so `corsgate schema` shows the value a user writes, never the wrapper.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::schema::{DurationText, NonZeroDurationText};

/// A table entry that may have failed to deserialize; the error is kept instead of aborting the file.
#[derive(Debug)]
pub(crate) enum Lenient<T> {
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
pub(crate) type Entry<T> = Spanned<Lenient<T>>;

/// The corsgate config file (TOML). Unknown keys are errors.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "corsgate config")]
pub(crate) struct RawConfig {
    /// `[server]`: listeners, the admin listener, TLS, connection limits and timeouts.
    #[schemars(with = "Option<RawServer>")]
    pub server: Option<Entry<RawServer>>,
    /// `[log]`: log format, level and the access log.
    #[schemars(with = "Option<RawLog>")]
    pub log: Option<Entry<RawLog>>,
    /// `[upstreams.NAME]`: the servers requests are forwarded to, by name (routes refer to them).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawUpstream>", extend("default" = {}))]
    pub upstreams: BTreeMap<Spanned<String>, Entry<RawUpstream>>,
    /// `[policies.NAME]`: CORS policies, by name (routes refer to them).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawPolicy>", extend("default" = {}))]
    pub policies: BTreeMap<Spanned<String>, Entry<RawPolicy>>,
    /// `[rate_limits.NAME]`: GCRA rate limits per client, origin or forwarded address, by name
    /// (routes refer to them). Limits are per corsgate process.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawRateLimit>", extend("default" = {}))]
    pub rate_limits: BTreeMap<Spanned<String>, Entry<RawRateLimit>>,
    /// `[[routes]]`: which upstream and policy serve a request. The most specific route wins: a
    /// matching host beats none, then the longest path_prefix. No routes: every request gets 404.
    #[serde(default)]
    #[schemars(with = "Vec<RawRoute>", extend("default" = []))]
    pub routes: Vec<Entry<RawRoute>>,
}

/// `listen`: one address (IP:PORT) or a list of them.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum Listen {
    /// `listen = "0.0.0.0:8080"`.
    One(String),
    /// `listen = ["127.0.0.1:8080", "[::1]:8080"]`.
    Many(Vec<String>),
}

/// `[server]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    /// Data listener address(es), IP:PORT, e.g. "0.0.0.0:8080" or ["127.0.0.1:8080", "[::1]:8080"].
    #[schemars(with = "Option<Listen>", extend("default" = "0.0.0.0:8080"))]
    pub listen: Option<Spanned<Listen>>,
    /// Admin listener address (IP:PORT) serving GET /healthz, /readyz and /metrics; omitted = no
    /// admin listener.
    #[schemars(with = "Option<String>", extend("examples" = ["127.0.0.1:9901"]))]
    pub admin: Option<Spanned<String>>,
    /// Serve TLS (HTTP/2 via ALPN) with these PEM files; reloaded on SIGHUP. Omitted = plain HTTP.
    #[schemars(with = "Option<RawTls>")]
    pub tls: Option<Spanned<RawTls>>,
    /// Every new connection must deliver a complete first request head within this.
    #[schemars(with = "Option<NonZeroDurationText>", extend("default" = "10s"))]
    pub header_read_timeout: Option<Spanned<String>>,
    /// Most client connections open at once on the data listeners.
    #[schemars(with = "Option<i64>", range(min = 1), extend("default" = 10000))]
    pub max_connections: Option<Spanned<i64>>,
    /// Most connections one client address may hold open at once; 0 = no per-client cap.
    #[schemars(with = "Option<i64>", range(min = 0), extend("default" = 0))]
    pub max_connections_per_ip: Option<Spanned<i64>>,
    /// Close a keep-alive (HTTP/1.1) or h2 connection with no request in flight this long.
    #[schemars(with = "Option<NonZeroDurationText>", extend("default" = "60s"))]
    pub idle_timeout: Option<Spanned<String>>,
    /// Threads that serve connections; 0 = the CPUs this process may use (its affinity mask and
    /// cgroup CPU quota).
    #[schemars(with = "Option<i64>", range(min = 0, max = 1024), extend("default" = 0))]
    pub worker_threads: Option<Spanned<i64>>,
    /// On SIGTERM, how long in-flight requests may take to finish before the process exits.
    #[schemars(with = "Option<DurationText>", extend("default" = "30s"))]
    pub shutdown_grace: Option<Spanned<String>>,
    /// Also reload when the config file changes (e.g. a Kubernetes ConfigMap), not only on SIGHUP.
    #[schemars(extend("default" = false))]
    pub watch_config: Option<bool>,
}

/// `tls = { cert, key }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    /// PEM certificate chain file, relative to the config file's directory.
    #[schemars(with = "String")]
    pub cert: Spanned<String>,
    /// PEM private key file, relative to the config file's directory.
    #[schemars(with = "String")]
    pub key: Spanned<String>,
}

/// `[log]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLog {
    /// Log line format: "pretty" for people, "json" (one object per line) for collectors.
    #[schemars(
        with = "Option<String>",
        extend("enum" = ["pretty", "json"], "default" = "pretty")
    )]
    pub format: Option<Spanned<String>>,
    /// Level filter in tracing's EnvFilter syntax: "info", "debug", "warn,corsgate=debug".
    #[schemars(with = "Option<String>", extend("default" = "info"))]
    pub level: Option<Spanned<String>>,
    /// Log one line per request.
    #[schemars(extend("default" = true))]
    pub access_log: Option<bool>,
}

/// `[upstreams.NAME]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstream {
    /// Where to forward: http://host[:port][/base] or https://... (rustls); no userinfo or query.
    #[schemars(with = "String", regex(pattern = r"^https?://"))]
    pub url: Spanned<String>,
    /// How long opening a connection to the upstream may take (greater than zero).
    #[schemars(with = "Option<NonZeroDurationText>", extend("default" = "2s"))]
    pub connect_timeout: Option<Spanned<String>>,
    /// How long the upstream may take to send its whole response head (greater than zero).
    #[schemars(with = "Option<NonZeroDurationText>", extend("default" = "30s"))]
    pub timeout: Option<Spanned<String>>,
    /// PEM CA bundle to verify an https upstream with a private CA, relative to the config file's
    /// directory. Omitted = the public web roots.
    #[schemars(with = "Option<String>")]
    pub ca_file: Option<Spanned<String>>,
    /// Forward the client's Host header; false: Host becomes the upstream's authority.
    #[schemars(extend("default" = false))]
    pub preserve_host: Option<bool>,
}

/// `[policies.NAME]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    /// Origins allowed to make cross-origin requests: exact "scheme://host[:port]",
    /// "https://*.example.com" (any subdomain, never the apex), "http://localhost:*" (any port), "*"
    /// (any origin; not with allow_credentials), or "null" (explicitly, with a warning).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub allowed_origins: Vec<Spanned<String>>,
    /// Regexes over the whole origin, each anchored at both ends; never match "null".
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub allowed_origin_regex: Vec<Spanned<String>>,
    /// Methods a cross-origin request may use; "*" only without credentials.
    #[schemars(
        with = "Option<Vec<String>>",
        extend("default" = ["GET", "HEAD", "POST"])
    )]
    pub allowed_methods: Option<Vec<Spanned<String>>>,
    /// Request headers a cross-origin request may send (case-insensitive); "*" only without
    /// credentials, and it never covers Authorization.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub allowed_headers: Vec<Spanned<String>>,
    /// Response headers a page's script may read (Access-Control-Expose-Headers); "*" only without
    /// credentials.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub expose_headers: Vec<Spanned<String>>,
    /// Allow cookies and HTTP auth on cross-origin requests (Access-Control-Allow-Credentials).
    #[schemars(with = "Option<bool>", extend("default" = false))]
    pub allow_credentials: Option<Spanned<bool>>,
    /// Seconds a browser may cache a preflight answer (Access-Control-Max-Age); omitted = header
    /// not sent; 0 sends 0. Chromium caps it at 7200.
    #[schemars(with = "Option<i64>", range(min = 0, max = 86400))]
    pub max_age: Option<Spanned<i64>>,
    /// Answer legacy Private Network Access preflights (Access-Control-Request-Private-Network).
    #[schemars(extend("default" = false))]
    pub allow_private_network: Option<bool>,
    /// Status of an allowed preflight answer.
    #[schemars(
        with = "Option<i64>",
        extend("enum" = [200, 204], "default" = 204)
    )]
    pub preflight_status: Option<Spanned<i64>>,
    /// "block": denied requests get 403 and never reach the upstream; "headers-only": they are
    /// forwarded without CORS headers; "report-only": everything is forwarded untouched and only
    /// logged and counted.
    #[schemars(
        with = "Option<String>",
        extend("enum" = ["block", "headers-only", "report-only"], "default" = "block")
    )]
    pub enforcement: Option<Spanned<String>>,
    /// Cross-site protection from the Sec-Fetch-* request headers: "off" ignores them; "enforce"
    /// refuses (403) cross-site requests that are neither CORS requests nor allowed navigations;
    /// "report" forwards them and counts them in corsgate_cross_site_reports_total.
    #[schemars(
        with = "Option<String>",
        extend("enum" = ["off", "enforce", "report"], "default" = "off")
    )]
    pub fetch_metadata: Option<Spanned<String>>,
    /// With fetch_metadata: let other sites link here (GET/HEAD, Sec-Fetch-Mode navigate,
    /// Sec-Fetch-Dest document; never iframe, frame, object or embed).
    #[schemars(extend("default" = true))]
    pub allow_cross_site_navigation: Option<bool>,
    /// With fetch_metadata: treat same-site (sibling subdomain) requests like same-origin ones.
    #[schemars(extend("default" = false))]
    pub allow_same_site: Option<bool>,
}

/// `[[routes]]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    /// The route's name in logs and metrics (the `route` label); default "<host><path_prefix>".
    #[schemars(with = "Option<String>")]
    pub name: Option<Spanned<String>>,
    /// Match this Host only: exact ("api.example.com") or a wildcard ("*.example.com"). Omitted =
    /// any host.
    #[schemars(with = "Option<String>")]
    pub host: Option<Spanned<String>>,
    /// Match paths under this prefix, on segment boundaries ("/v1" matches /v1 and /v1/x, not /v10).
    #[schemars(with = "Option<String>", regex(pattern = "^/"), extend("default" = "/"))]
    pub path_prefix: Option<Spanned<String>>,
    /// Remove path_prefix from the path before forwarding.
    #[schemars(extend("default" = false))]
    pub strip_prefix: Option<bool>,
    /// Origins this route is publicly served at, when a load balancer in front changes the scheme
    /// or Host corsgate sees; requests from them are same-origin.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub own_origins: Vec<Spanned<String>>,
    /// The name of an `[upstreams.NAME]` table.
    #[schemars(with = "String")]
    pub upstream: Spanned<String>,
    /// The name of a `[policies.NAME]` table.
    #[schemars(with = "String")]
    pub policy: Spanned<String>,
    /// The name of a `[rate_limits.NAME]` table; omitted = no rate limit.
    #[schemars(with = "Option<String>")]
    pub rate_limit: Option<Spanned<String>>,
}

/// `[rate_limits.NAME]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateLimit {
    /// Sustained requests per second per key (GCRA); fractions allowed (0.5 = one every 2 s).
    #[schemars(with = "f64", extend("exclusiveMinimum" = 0, "maximum" = 1000000000))]
    pub requests_per_second: Spanned<f64>,
    /// Requests let through at once before the sustained rate applies.
    #[schemars(with = "i64", range(min = 1, max = 4294967295i64))]
    pub burst: Spanned<i64>,
    /// What a bucket is per: "client" (the TCP peer's IP address), "origin" (the Origin header;
    /// requests without one share a bucket), "forwarded" (the client address in X-Forwarded-For).
    #[schemars(
        with = "Option<String>",
        extend("enum" = ["client", "origin", "forwarded"], "default" = "client")
    )]
    pub key: Option<Spanned<String>>,
    /// key = "forwarded": the proxies in front that append to X-Forwarded-For; the address this
    /// many entries from the right is used.
    #[schemars(with = "Option<i64>", range(min = 1), extend("default" = 1))]
    pub trusted_hops: Option<Spanned<i64>>,
    /// Distinct keys held at most (memory bound); idle keys are evicted first, and keys beyond the
    /// bound share one overflow bucket until room frees.
    #[schemars(with = "Option<i64>", range(min = 1), extend("default" = 100000))]
    pub max_keys: Option<Spanned<i64>>,
}
