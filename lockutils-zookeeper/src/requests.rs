//! Requests to the server: which failures are worth retrying, how an
//! acquisition bounds every request by its deadline, and the clean-up that
//! must happen whatever the connection does.

use std::future::Future;
use std::time::{Duration, Instant};

use zookeeper_client as zk;

/// Pause between attempts of a request that failed with the connection.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Whether a request failed only because the connection did: the client
/// reconnects within the session, so the request may be retried. Besides
/// `ConnectionLoss`, the client reports a silent connection ("no response
/// from connection in …") and I/O errors as `Custom`, and a request timeout
/// as `Timeout`; none of them ends the session.
pub(crate) fn transient(e: &zk::Error) -> bool {
    matches!(
        e,
        zk::Error::ConnectionLoss | zk::Error::Timeout | zk::Error::Custom(_)
    )
}

/// Whether the session is over, so that its ephemeral nodes are gone (or go
/// within the session timeout, once the server expires it).
fn session_over(client: &zk::Client, e: &zk::Error) -> bool {
    client.state().is_terminated()
        || matches!(e, zk::Error::SessionExpired | zk::Error::ClientClosed)
}

/// Why a request of an acquisition did not succeed.
#[derive(Debug)]
pub(crate) enum Failed {
    /// The server answered with an error (or the client gave up).
    Zk(zk::Error),
    /// The acquisition's deadline came first.
    Deadline,
}

/// Awaits a request's answer, but not past `deadline`.
pub(crate) async fn within<T>(
    deadline: Option<Instant>,
    answer: impl Future<Output = Result<T, zk::Error>>,
) -> Result<T, Failed> {
    match deadline {
        None => answer.await.map_err(Failed::Zk),
        Some(d) => match tokio::time::timeout_at(d.into(), answer).await {
            Ok(r) => r.map_err(Failed::Zk),
            Err(_elapsed) => Err(Failed::Deadline),
        },
    }
}

/// Sends `op` again while it fails with a connection problem (the client
/// reconnects meanwhile), every attempt and pause bounded by `deadline`.
pub(crate) async fn retrying<T, Fut>(
    deadline: Option<Instant>,
    mut op: impl FnMut() -> Fut,
) -> Result<T, Failed>
where
    Fut: Future<Output = Result<T, zk::Error>>,
{
    loop {
        match within(deadline, op()).await {
            Err(Failed::Zk(e)) if transient(&e) => {
                within(deadline, async {
                    tokio::time::sleep(RETRY_PAUSE).await;
                    Ok(())
                })
                .await?;
            }
            other => return other,
        }
    }
}

/// Deletes `node` and makes sure it is gone: the delete is sent before this
/// returns (so it is ordered before anything the session sends later), and
/// sent again while it fails with the connection. Ends when the node is
/// deleted, or found missing, or its session is over (which takes the node
/// with it); the client itself ends a session it cannot reach within 7/5 of
/// the session timeout, which bounds the whole step. Fails only with an
/// error that retrying cannot cure (say, an ACL refusing the delete).
pub(crate) fn delete_until_gone(
    client: zk::Client,
    node: String,
) -> impl Future<Output = Result<(), zk::Error>> + Send + 'static {
    let first = client.delete(&node, None);
    async move {
        let mut answer = first.await;
        loop {
            match answer {
                Ok(()) | Err(zk::Error::NoNode) => return Ok(()),
                Err(e) if session_over(&client, &e) => return Ok(()),
                Err(e) if transient(&e) => {
                    tokio::time::sleep(RETRY_PAUSE).await;
                    answer = client.delete(&node, None).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Deletes the children of `dir` whose names start with `prefix`: a
/// candidate whose `create` may have been applied without its answer being
/// seen. Retries as [`delete_until_gone`] does.
pub(crate) async fn delete_by_prefix(
    client: zk::Client,
    dir: String,
    prefix: String,
) -> Result<(), zk::Error> {
    loop {
        match client.list_children(&dir).await {
            Ok(children) => {
                for c in children.iter().filter(|c| c.starts_with(&prefix)) {
                    delete_until_gone(client.clone(), format!("{dir}/{c}")).await?;
                }
                return Ok(());
            }
            Err(zk::Error::NoNode) => return Ok(()),
            Err(e) if session_over(&client, &e) => return Ok(()),
            Err(e) if transient(&e) => tokio::time::sleep(RETRY_PAUSE).await,
            Err(e) => return Err(e),
        }
    }
}
