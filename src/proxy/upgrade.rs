//! Upgrade tunnels (WebSocket and any other `Upgrade`): once the upstream answers `101`, both
//! connections are taken over from hyper and bytes are copied both ways until either side closes.

use std::sync::Arc;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// Splice the client's connection (`client`, from the request) to the upstream's (`upstream`, from
/// the `101` response) on a task of its own. `hold` is kept alive for the tunnel's lifetime: it is the
/// connection's slot under `max_connections` and its count in the active-connections gauge.
pub(crate) fn spawn_tunnel<H: Send + Sync + 'static>(
    client: OnUpgrade,
    upstream: OnUpgrade,
    hold: Arc<H>,
) {
    tokio::spawn(async move {
        let _hold = hold;
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade did not complete");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((up, down)) => tracing::debug!(bytes_up = up, bytes_down = down, "tunnel closed"),
            Err(e) => tracing::debug!(error = %e, "tunnel broke"),
        }
    });
}
