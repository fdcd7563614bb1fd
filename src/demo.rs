//! `corsgate demo`: an in-process echo upstream, the real proxy in front of it with a built-in demo
//! policy, and a demo page served on two more loopback origins (one allowed, one denied), all on
//! 127.0.0.1 with ports picked by the OS. Prints the URLs and runs until Ctrl-C.

mod explain;
mod http;
mod pages;
mod upstream;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::gateway::Gateway;
use crate::observe::Observer;
use crate::snapshot::LogSettings;
use pages::{Pages, Role};
use upstream::Echo;

/// The demo policy, as a config file. `{UPSTREAM}` and `{PAGE_ORIGIN}` are filled in once the
/// listeners are bound. `[server].listen` is not used: the demo hands the proxy its own listener.
const DEMO_CONFIG: &str = r#"# The built-in policy of `corsgate demo`.
[server]
listen = "127.0.0.1:0"
shutdown_grace = "2s"

[log]
format = "pretty"
level = "info"
access_log = true

[upstreams.echo]
url = "http://{UPSTREAM}"

[policies.demo]
allowed_origins = ["{PAGE_ORIGIN}"]
allowed_methods = ["GET", "POST", "PUT", "DELETE"]
allowed_headers = ["content-type", "x-demo-token"]
expose_headers = ["x-demo-request-id"]
allow_credentials = true
max_age = 600
enforcement = "block"

[[routes]]
name = "api"
path_prefix = "/api"
strip_prefix = true
upstream = "echo"
policy = "demo"
"#;

/// The demo config for an upstream at `upstream` and a page at `page_origin`.
pub(crate) fn demo_config(upstream: SocketAddr, page_origin: &str) -> String {
    DEMO_CONFIG
        .replace("{UPSTREAM}", &upstream.to_string())
        .replace("{PAGE_ORIGIN}", page_origin)
}

/// A running demo. Stop it with [`Demo::stop`].
#[derive(Debug)]
pub(crate) struct Demo {
    /// The proxy (the API the page calls, under `/api`).
    pub api: SocketAddr,
    /// The page on the origin the policy allows.
    pub allowed_page: SocketAddr,
    /// The same page on an origin the policy denies.
    pub denied_page: SocketAddr,
    /// The echo upstream behind the proxy.
    pub upstream: SocketAddr,
    log: LogSettings,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Demo {
    /// Bind every listener on 127.0.0.1 and start serving.
    pub(crate) async fn start() -> anyhow::Result<Demo> {
        let bind = || TcpListener::bind("127.0.0.1:0");
        let (up_l, api_l, ok_l, no_l) =
            (bind().await?, bind().await?, bind().await?, bind().await?);
        let (upstream, api) = (up_l.local_addr()?, api_l.local_addr()?);
        let (allowed_page, denied_page) = (ok_l.local_addr()?, no_l.local_addr()?);
        let toml = demo_config(upstream, &format!("http://{allowed_page}"));
        let loaded = crate::config::load_str(&toml, Path::new("<corsgate demo>"))
            .context("the built-in demo config does not compile")?;
        let gateway =
            Gateway::new(loaded.snapshot, Observer::new()).context("demo upstream client")?;
        // The page's `/explain` reads the very snapshot the proxy serves.
        let snapshot = gateway.snapshot();
        let log = snapshot.log.clone();
        let (stop, stopped) = watch::channel(false);
        let api_host = api.to_string();
        let page = |role, other: SocketAddr| {
            let pages = Pages::new(
                role,
                &api_host,
                &format!("http://{other}/"),
                &toml,
                Arc::clone(&snapshot),
            );
            move |req| pages.clone().handle(req)
        };
        let echo = Echo::default();
        let tasks = vec![
            tokio::spawn(http::serve(
                up_l,
                move |req| echo.clone().handle(req),
                stopped.clone(),
            )),
            tokio::spawn(http::serve(
                ok_l,
                page(Role::Allowed, denied_page),
                stopped.clone(),
            )),
            tokio::spawn(http::serve(
                no_l,
                page(Role::Denied, allowed_page),
                stopped.clone(),
            )),
            proxy(api_l, &gateway, stopped),
        ];
        Ok(Demo {
            api,
            allowed_page,
            denied_page,
            upstream,
            log,
            stop,
            tasks,
        })
    }

    /// What `corsgate demo` prints: the URLs to open.
    pub(crate) fn banner(&self) -> String {
        format!(
            "corsgate demo: a CORS-enforcing proxy in front of an echo API, and a page that calls it.\n\
             \n  demo page (allowed origin): http://{}/\
             \n  same page (denied origin):  http://{}/\
             \n  API through corsgate:       http://{}/api/\
             \n  echo upstream behind it:    http://{}/\n\
             \nOpen the first URL and press the buttons. Press Ctrl-C to stop.",
            self.allowed_page, self.denied_page, self.api, self.upstream
        )
    }

    /// Stop accepting, let open connections finish (briefly), and wait for every server.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Start the real proxy (the `Gateway` that `corsgate run` starts) on `listener` until `stop` turns
/// true.
fn proxy(
    listener: TcpListener,
    gateway: &Gateway,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::spawn(gateway.serve(vec![listener], shutdown))
}

/// Start the demo, print the URLs, run until Ctrl-C (or SIGTERM), then stop everything.
pub async fn run() -> anyhow::Result<()> {
    let demo = Demo::start().await?;
    // The proxy's access and denial log goes to stderr, so the terminal shows every decision.
    let _log = crate::telemetry::init(&demo.log).context("logging")?;
    println!("{}", demo.banner());
    shutdown_signal().await?;
    eprintln!("corsgate demo: stopping");
    demo.stop().await;
    Ok(())
}

async fn shutdown_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests;
