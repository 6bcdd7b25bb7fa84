//! The control API: HTTP/JSON on a Unix socket (mode 0600), answered by the
//! processing task through a query channel. `duet ctl` is its client.

use crate::api::{LeaseJson, StatusJson};
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
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
}

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
        .with_state(tx);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
