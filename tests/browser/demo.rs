//! `corsgate demo`, end to end: run the real binary, read the URLs it prints, and click through its
//! page in a headless browser (each engine in turn) from the allowed origin and from the denied one.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::engine::{Browser, Engine, Page};
use serde_json::Value;

/// The scenarios on the page, and whether each works from the allowed origin.
const SCENARIOS: [(&str, bool); 6] = [
    ("simple-get", true),
    ("preflight-put", true),
    ("credentials", true),
    ("denied-header", false),
    ("exposed-headers", true),
    ("upstream-error", true),
];

/// `corsgate demo` as a child process; killed if the test ends without stopping it.
struct DemoProcess {
    pid: u32,
    exited: Arc<AtomicBool>,
    exit: Option<tokio::sync::oneshot::Receiver<std::io::Result<ExitStatus>>>,
    allowed: String,
    denied: String,
}

impl DemoProcess {
    /// Start the binary and wait (bounded) for the two page URLs on its stdout.
    async fn start() -> DemoProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_corsgate"))
            .arg("demo")
            // Its access log would flood the test output; errors still come through.
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn corsgate demo");
        let stdout = child.stdout.take().expect("stdout pipe");
        let pid = child.id();
        let (tx, rx) = tokio::sync::oneshot::channel();
        // A thread reads stdout for the process's whole life, so the pipe never fills up.
        std::thread::spawn(move || {
            let (mut allowed, mut denied, mut tx) = (None, None, Some(tx));
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let url = line.split_whitespace().find(|w| w.starts_with("http://"));
                if line.contains("(allowed origin)") {
                    allowed = url.map(str::to_owned);
                } else if line.contains("(denied origin)") {
                    denied = url.map(str::to_owned);
                }
                if let (Some(a), Some(d)) = (&allowed, &denied) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send((a.clone(), d.clone()));
                    }
                }
            }
        });
        // Another owns the child and reports its exit: the exit is the readiness signal we await.
        let exited = Arc::new(AtomicBool::new(false));
        let (exit_tx, exit_rx) = tokio::sync::oneshot::channel();
        let flag = Arc::clone(&exited);
        std::thread::spawn(move || {
            let status = child.wait();
            flag.store(true, Ordering::SeqCst);
            let _ = exit_tx.send(status);
        });
        let mut demo = DemoProcess {
            pid,
            exited,
            exit: Some(exit_rx),
            allowed: String::new(),
            denied: String::new(),
        };
        let Ok(Ok((allowed, denied))) = tokio::time::timeout(Duration::from_secs(60), rx).await
        else {
            panic!("corsgate demo did not print its URLs within 60s");
        };
        demo.allowed = allowed;
        demo.denied = denied;
        demo
    }

    /// Ctrl-C it and wait (bounded) for it to exit.
    async fn interrupt(mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-INT", &self.pid.to_string()])
            .status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -INT {}", self.pid);
        let exit = self.exit.take().expect("exit receiver");
        match tokio::time::timeout(Duration::from_secs(15), exit).await {
            Ok(Ok(Ok(status))) => status,
            Ok(other) => panic!("waiting for corsgate demo: {other:?}"),
            Err(_) => panic!("corsgate demo did not stop within 15s of SIGINT"),
        }
    }
}

impl Drop for DemoProcess {
    fn drop(&mut self) {
        if !self.exited.load(Ordering::SeqCst) {
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
        }
    }
}

/// Click a scenario's button and wait until the page has rendered its result.
async fn click(page: &Page, id: &str) -> Value {
    let js = format!(
        r#"(async (id) => {{
  const box = document.getElementById('scenario-' + id);
  document.getElementById('run-' + id).click();
  await new Promise((resolve) => {{
    if (box.dataset.state === 'done') return resolve();
    new MutationObserver((_, obs) => {{
      if (box.dataset.state === 'done') {{ obs.disconnect(); resolve(); }}
    }}).observe(box, {{ attributes: true }});
  }});
  return {{ result: window.demoResults[id], shown: box.querySelector('.result').innerText }};
}})({id:?})"#
    );
    page.eval(&js).await.expect("click scenario")
}

/// corsgate's explanation of the first request of the first step.
fn first_decision(result: &Value) -> &Value {
    &result["steps"][0]["explain"][0]["answer"]
}

pub async fn demo_scenarios_work_from_the_allowed_origin_and_are_blocked_from_the_denied_one(
    engine: Engine,
) {
    let demo = DemoProcess::start().await;
    let browser = Browser::launch(engine).await.expect("launch browser");

    let page = browser.new_page().await.expect("tab");
    let mark = page.mark();
    page.navigate(&demo.allowed)
        .await
        .expect("open allowed page");
    for (id, works) in SCENARIOS {
        let got = click(&page, id).await;
        let r = &got["result"];
        let want = if works { "allowed" } else { "blocked" };
        assert_eq!(r["outcome"], want, "{id} from the allowed origin: {got}");
        let shown = got["shown"].as_str().unwrap_or_default();
        assert!(shown.contains("As expected"), "{id}: {shown}");
        assert!(first_decision(r)["decision"].is_string(), "{id}: {r}");
    }
    let r = &click(&page, "simple-get").await["result"];
    assert_eq!(first_decision(r)["decision"], "allowed", "{r}");
    let r = &click(&page, "exposed-headers").await["result"];
    assert!(r["headers"]["x-demo-request-id"].is_string(), "{r}");
    assert!(r["headers"].get("x-demo-internal").is_none(), "{r}");
    let r = &click(&page, "upstream-error").await["result"];
    assert_eq!(r["status"], 500, "{r}");
    let r = &click(&page, "credentials").await["result"];
    let body: Value = serde_json::from_str(r["body"].as_str().unwrap_or("null")).unwrap();
    assert!(
        body["cookie"]
            .as_str()
            .is_some_and(|c| c.contains("corsgate_demo=visit-")),
        "{body}"
    );
    let r = &click(&page, "denied-header").await["result"];
    let d = first_decision(r);
    assert_eq!(d["decision"], "preflight-denied", "{r}");
    assert!(
        d["reason"]
            .as_str()
            .is_some_and(|s| s.contains("header_not_allowed")),
        "{d}"
    );
    // No CDN, no external resource: everything the page loaded is on loopback.
    for req in page.requests_since(mark) {
        let local = req.url.starts_with("http://127.0.0.1:") || req.url.starts_with("data:");
        assert!(local, "{req:?}");
    }

    let page = browser.new_page().await.expect("tab");
    page.navigate(&demo.denied).await.expect("open denied page");
    for (id, _) in SCENARIOS {
        let got = click(&page, id).await;
        assert_eq!(
            got["result"]["outcome"], "blocked",
            "{id} from the denied origin: {got}"
        );
    }
    let r = &click(&page, "simple-get").await["result"];
    let d = first_decision(r);
    assert_eq!(d["decision"], "denied", "{r}");
    assert_eq!(d["status"], 403, "{d}");
    assert!(
        d["reason"]
            .as_str()
            .is_some_and(|s| s.contains("origin_not_allowed")),
        "{d}"
    );

    drop(browser);
    let status = demo.interrupt().await;
    assert!(
        status.success(),
        "corsgate demo exited with {status} after Ctrl-C"
    );
}
