//! `corsgate demo` (lands with issue 7).

/// Start the demo: echo upstream, proxy, demo pages; print URLs; run until Ctrl-C.
pub async fn run() -> anyhow::Result<()> {
    anyhow::bail!("`corsgate demo` is not implemented yet (issue 7)")
}
