//! corsgate itself, in-process for the browser tests: compile a TOML string with the real config
//! compiler and serve it with the real server on 127.0.0.1:0.

use std::net::SocketAddr;
use std::path::Path;

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
        let gateway = Gateway::new(loaded.snapshot, Observer::new()).expect("upstream clients");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(gateway.serve(vec![listener], shutdown));
        Gate {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
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
}

impl World {
    /// Start everything; `policies_and_routes` gets the allowed page's origin and returns the
    /// `[policies.*]` and `[[routes]]` part of the config (the upstream is called `echo`).
    pub async fn start(engine: Engine, policies_and_routes: impl FnOnce(&str) -> String) -> World {
        use crate::servers::{echo, probe_page, serve};
        let upstream = serve(echo).await.expect("echo upstream");
        let allowed = probe_page().await.expect("allowed page server");
        let denied = probe_page().await.expect("denied page server");
        let toml = config(upstream.addr, &policies_and_routes(&allowed.origin()));
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
        }
    }

    /// A new tab showing the probe page served by `site`.
    pub async fn open(&self, site: &Server) -> Page {
        let page = self.browser.new_page().await.expect("new tab");
        page.navigate(&format!("{}/", site.origin()))
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
