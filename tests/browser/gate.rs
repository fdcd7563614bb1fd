//! corsgate itself, in-process for the browser tests: compile a TOML string with the real config
//! compiler and serve it with the real server on 127.0.0.1:0.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use corsgate::Gateway;
use corsgate::Observer;

use crate::engine::{Browser, Engine, Page};
use crate::servers::Server;

/// A running proxy; stopped when dropped.
pub struct Gate {
    /// Where it listens.
    pub addr: SocketAddr,
    observer: Arc<Observer>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Gate {
    /// Compile `toml` (panicking with every diagnostic if it does not compile) and serve it.
    pub async fn start(toml: &str) -> Gate {
        let loaded = match corsgate::load_str(toml, Path::new("browser-test.toml")) {
            Ok(l) => l,
            Err(e) => panic!(
                "test config does not compile:\n{}\n{toml}",
                e.errors().join("\n")
            ),
        };
        let observer = Observer::new();
        let gateway =
            Gateway::new(loaded.snapshot, Arc::clone(&observer)).expect("upstream clients");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(gateway.serve(vec![listener], shutdown));
        Gate {
            addr,
            observer,
            stop: Some(stop),
            task,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The sum, over every route, of the series of counter `name` (as `/metrics` would show it)
    /// whose labels include `label` (`key="value"`, or `""` for all). The proxy counts a request
    /// before its response leaves, so once the browser has the answer the count is final.
    pub fn counted(&self, name: &str, label: &str) -> f64 {
        let text = self.observer.encode_metrics().expect("encode metrics");
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter(|l| l.contains(label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.abort();
    }
}

/// A config with one upstream (`echo` at `upstream`) and the given policies and routes (TOML).
pub fn config(upstream: SocketAddr, policies_and_routes: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"1s\"\n\n\
         [log]\naccess_log = false\n\n\
         [upstreams.echo]\nurl = \"http://{upstream}\"\n\n{policies_and_routes}"
    )
}

/// Everything one browser test needs: an echo upstream, the proxy in front of it, the probe page on
/// an origin the policy allows and on one it does not, and a fresh browser of one engine.
pub struct World {
    /// Headless Chromium or Firefox.
    pub browser: Browser,
    /// The recording echo upstream.
    pub upstream: Server,
    /// corsgate.
    pub gate: Gate,
    /// The probe page on the allowed origin.
    pub allowed: Server,
    /// The probe page on a denied origin.
    pub denied: Server,
    /// Whether the pages are opened by name (`localhost`), and so are cross-site to the proxy.
    cross_site: bool,
}

impl World {
    /// Start everything; `policies_and_routes` gets the allowed page's origin and returns the
    /// `[policies.*]` and `[[routes]]` part of the config (the upstream is called `echo`).
    pub async fn start(engine: Engine, policies_and_routes: impl FnOnce(&str) -> String) -> World {
        World::start_with(engine, false, policies_and_routes).await
    }

    /// As [`World::start`], but the pages are on `http://localhost:PORT` (see
    /// [`Server::origin_by_name`]): cross-site to the proxy on `127.0.0.1`, so the browser labels
    /// their requests `Sec-Fetch-Site: cross-site`. The closure gets that origin.
    pub async fn start_cross_site(
        engine: Engine,
        policies_and_routes: impl FnOnce(&str) -> String,
    ) -> World {
        World::start_with(engine, true, policies_and_routes).await
    }

    async fn start_with(
        engine: Engine,
        cross_site: bool,
        policies_and_routes: impl FnOnce(&str) -> String,
    ) -> World {
        use crate::servers::{echo, probe_page, serve};
        let upstream = serve(echo).await.expect("echo upstream");
        let allowed = probe_page().await.expect("allowed page server");
        let denied = probe_page().await.expect("denied page server");
        let allowed_origin = if cross_site {
            allowed.origin_by_name()
        } else {
            allowed.origin()
        };
        let toml = config(upstream.addr, &policies_and_routes(&allowed_origin));
        let gate = Gate::start(&toml).await;
        let browser = match Browser::launch(engine).await {
            Ok(b) => b,
            Err(e) => panic!("launch {engine:?}: {e}"),
        };
        World {
            browser,
            upstream,
            gate,
            allowed,
            denied,
            cross_site,
        }
    }

    /// The origin the pages of `site` are opened on.
    pub fn origin_of(&self, site: &Server) -> String {
        if self.cross_site {
            site.origin_by_name()
        } else {
            site.origin()
        }
    }

    /// A new tab showing the probe page served by `site`.
    pub async fn open(&self, site: &Server) -> Page {
        let page = self.browser.new_page().await.expect("new tab");
        page.navigate(&format!("{}/", self.origin_of(site)))
            .await
            .expect("open probe page");
        page
    }

    /// A URL on the proxy, by IP literal (`http://127.0.0.1:PORT/...`).
    pub fn api(&self, path: &str) -> String {
        format!("{}{path}", self.gate.origin())
    }

    /// A URL on the proxy, by name (`http://localhost:PORT/...`). Firefox keeps cached preflights
    /// only for requests to a host name, not to an IP literal, so preflight-cache cases use this.
    pub fn api_by_name(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.gate.addr.port())
    }
}

/// A `[policies.NAME]` table allowing `origin`, with extra `key = value` lines.
pub fn policy(name: &str, origin: &str, extra: &str) -> String {
    format!("[policies.{name}]\nallowed_origins = [\"{origin}\"]\n{extra}\n\n")
}

/// A `[[routes]]` entry sending `prefix` to the echo upstream under `policy`.
pub fn route(prefix: &str, policy: &str) -> String {
    format!(
        "[[routes]]\npath_prefix = \"{prefix}\"\nupstream = \"echo\"\npolicy = \"{policy}\"\n\n"
    )
}
