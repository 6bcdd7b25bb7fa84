//! The control API: HTTP/JSON on a Unix socket (mode 0600), answered by the
//! processing task through a query channel. `duet ctl` is its client.

use crate::api::{LeaseJson, StatusJson};
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

/// A question for the processing task.
#[derive(Debug)]
pub enum Query {
    /// Every lease record.
    Leases(oneshot::Sender<Vec<LeaseJson>>),
    /// Server and relationship status.
    Status(oneshot::Sender<StatusJson>),
    /// The operator declares the partner of a relationship down.
    PartnerDown(String, oneshot::Sender<Result<(), String>>),
    /// A planned handover of a relationship, answered when it ends.
    Handover(String, Duration, oneshot::Sender<Result<String, String>>),
    /// A server that handed over takes part again.
    Resume(String, oneshot::Sender<Result<String, String>>),
    /// Commissioning without the partner (RFC 8156 §8.3.2).
    Commission(String, oneshot::Sender<Result<String, String>>),
    /// The partner died while recovering and is gone with its store.
    PartnerLost(String, oneshot::Sender<Result<String, String>>),
}

/// The most a handover may be given to complete.
const MAX_HANDOVER: Duration = Duration::from_secs(600);

/// `timeout=SECS` of a query string, if given; an error names a bad one.
fn timeout_param(query: Option<&str>) -> Result<Option<u64>, String> {
    let Some(v) = query
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("timeout="))
    else {
        return Ok(None);
    };
    v.parse()
        .map(Some)
        .map_err(|_| format!("timeout={v}: not a whole number of seconds"))
}

/// Runs an operator command that answers a text, as JSON.
async fn command(
    tx: &mpsc::Sender<Query>,
    name: &str,
    make: impl FnOnce(oneshot::Sender<Result<String, String>>) -> Query,
    wait: Duration,
) -> Result<Json<serde_json::Value>, (StatusCode, String)> {
    let (otx, orx) = oneshot::channel();
    tx.send(make(otx))
        .await
        .map_err(|_| (StatusCode::SERVICE_UNAVAILABLE, "server stopping".to_string()))?;
    let r = tokio::time::timeout(wait, orx)
        .await
        .map_err(|_| (StatusCode::GATEWAY_TIMEOUT, "no answer in time".to_string()))?
        .map_err(|_| (StatusCode::SERVICE_UNAVAILABLE, "server stopping".to_string()))?;
    match r {
        Ok(text) => Ok(Json(serde_json::json!({ "relationship": name, "result": text }))),
        Err(e) => Err((StatusCode::CONFLICT, e)),
    }
}

async fn handover(
    State(tx): State<mpsc::Sender<Query>>,
    UrlPath(name): UrlPath<String>,
    uri: axum::http::Uri,
) -> Result<Json<serde_json::Value>, (StatusCode, String)> {
    let timeout = timeout_param(uri.query())
        .map_err(|e| (StatusCode::BAD_REQUEST, e))?
        .map_or(duet_core::failover::HANDOVER_TIMEOUT, Duration::from_secs)
        .min(MAX_HANDOVER);
    command(
        &tx,
        &name,
        |o| Query::Handover(name.clone(), timeout, o),
        timeout + Duration::from_secs(5),
    )
    .await
}

async fn resume(
    State(tx): State<mpsc::Sender<Query>>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<serde_json::Value>, (StatusCode, String)> {
    command(&tx, &name, |o| Query::Resume(name.clone(), o), ANSWER).await
}

async fn commission(
    State(tx): State<mpsc::Sender<Query>>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<serde_json::Value>, (StatusCode, String)> {
    command(&tx, &name, |o| Query::Commission(name.clone(), o), ANSWER).await
}

async fn partner_lost(
    State(tx): State<mpsc::Sender<Query>>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<serde_json::Value>, (StatusCode, String)> {
    command(&tx, &name, |o| Query::PartnerLost(name.clone(), o), ANSWER).await
}

/// How long an immediate command may take to be answered.
const ANSWER: Duration = Duration::from_secs(10);

async fn ask<T>(
    tx: &mpsc::Sender<Query>,
    make: impl FnOnce(oneshot::Sender<T>) -> Query,
) -> Result<T, StatusCode> {
    let (otx, orx) = oneshot::channel();
    tx.send(make(otx))
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    orx.await.map_err(|_| StatusCode::SERVICE_UNAVAILABLE)
}

async fn leases(State(tx): State<mpsc::Sender<Query>>) -> Result<Json<Vec<LeaseJson>>, StatusCode> {
    ask(&tx, Query::Leases).await.map(Json)
}

async fn status(State(tx): State<mpsc::Sender<Query>>) -> Result<Json<StatusJson>, StatusCode> {
    ask(&tx, Query::Status).await.map(Json)
}

async fn partner_down(
    State(tx): State<mpsc::Sender<Query>>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<serde_json::Value>, (StatusCode, String)> {
    let r = ask(&tx, |o| Query::PartnerDown(name.clone(), o))
        .await
        .map_err(|c| (c, "server busy or stopping".to_string()))?;
    match r {
        Ok(()) => Ok(Json(
            serde_json::json!({ "relationship": name, "state": "partner-down" }),
        )),
        Err(e) => Err((StatusCode::CONFLICT, e)),
    }
}

/// Binds the control socket (replacing a stale one) with mode 0600.
pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if path.exists() {
        // A live server would still answer; a stale socket file is removed.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "control socket {} is in use: is another duet running?",
                path.display()
            );
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves the API until `shutdown` resolves.
pub async fn serve(
    listener: UnixListener,
    tx: mpsc::Sender<Query>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/v1/leases", get(leases))
        .route("/v1/status", get(status))
        .route(
            "/v1/failover/{name}/partner-down",
            axum::routing::post(partner_down),
        )
        .route("/v1/failover/{name}/handover", axum::routing::post(handover))
        .route("/v1/failover/{name}/resume", axum::routing::post(resume))
        .route("/v1/failover/{name}/commission", axum::routing::post(commission))
        .route(
            "/v1/failover/{name}/partner-lost",
            axum::routing::post(partner_lost),
        )
        .with_state(tx);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::timeout_param;

    #[test]
    fn the_handover_timeout_comes_from_the_query_string() {
        assert_eq!(timeout_param(None), Ok(None));
        assert_eq!(timeout_param(Some("timeout=30")), Ok(Some(30)));
        assert_eq!(timeout_param(Some("a=1&timeout=5")), Ok(Some(5)));
        assert!(timeout_param(Some("timeout=ten"))
            .unwrap_err()
            .contains("timeout=ten"));
    }
}
