//! Listening, loading in the background, serving, and shutting down
//! gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Instant;

use odqa_pipeline::Pipeline;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::config::ServeConfig;
use crate::error::ServeError;
use crate::routes::router;
use crate::state::AppState;

/// What a loader may fail with (anything that prints).
pub type LoadError = Box<dyn std::error::Error + Send + Sync>;

/// Opens the indexes and loads the models; runs once, on a blocking thread,
/// while the server already answers `/healthz` and `/readyz`.
pub type Loader = Box<dyn FnOnce() -> Result<Pipeline, LoadError> + Send + 'static>;

/// A bound listener with its state, ready to [`Server::serve`].
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: AppState,
    loader: Loader,
}

impl Server {
    /// Validates `config` and binds its address; nothing is loaded yet.
    pub async fn bind<F>(config: ServeConfig, loader: F) -> Result<Server, ServeError>
    where
        F: FnOnce() -> Result<Pipeline, LoadError> + Send + 'static,
    {
        let addr = config.addr;
        let state = AppState::new(config)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let local_addr = listener.local_addr()?;
        Ok(Server {
            listener,
            local_addr,
            state,
            loader: Box::new(loader),
        })
    }

    /// The bound address (the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then stops accepting and lets
    /// in-flight requests finish. Loading starts at once on a blocking
    /// thread; `/readyz` answers 503 until it is done. When loading fails
    /// the server shuts down the same way and returns [`ServeError::Load`].
    pub async fn serve<S>(self, shutdown: S) -> Result<(), ServeError>
    where
        S: Future<Output = ()> + Send + 'static,
    {
        let Server {
            listener,
            local_addr,
            state,
            loader,
        } = self;
        let (failed_tx, failed_rx) = oneshot::channel::<()>();
        let loading = state.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let outcome = match tokio::task::spawn_blocking(loader).await {
                Ok(Ok(pipeline)) => loading.install(pipeline).map_err(|e| e.to_string()),
                Ok(Err(err)) => Err(err.to_string()),
                Err(join) => Err(format!("the loader panicked: {join}")),
            };
            match outcome {
                Ok(()) => tracing::info!(
                    seconds = started.elapsed().as_secs_f64(),
                    "indexes and models loaded; ready"
                ),
                Err(why) => {
                    tracing::error!(error = %why, "loading failed; shutting down");
                    loading.fail(why);
                    let _ = failed_tx.send(());
                }
            }
        });
        tracing::info!(addr = %local_addr, "listening; loading indexes and models");
        let stop = async move {
            let failed = async {
                // A dropped sender means loading succeeded: wait for the signal.
                if failed_rx.await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                () = shutdown => {}
                () = failed => {}
            }
            tracing::info!("shutting down: finishing in-flight requests");
        };
        axum::serve(listener, router(state.clone()))
            .with_graceful_shutdown(stop)
            .await?;
        tracing::info!("stopped");
        match state.failure() {
            Some(why) => Err(ServeError::Load(why.to_string())),
            None => Ok(()),
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

/// Binds, loads and serves on a new multi-threaded runtime until SIGINT or
/// SIGTERM: what `odqa serve` runs. `on_listening` sees the bound address
/// (e.g. to print it) before loading starts.
pub fn run<F>(
    config: ServeConfig,
    loader: F,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), ServeError>
where
    F: FnOnce() -> Result<Pipeline, LoadError> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("odqa-http")
        .build()?;
    runtime.block_on(async move {
        let server = Server::bind(config, loader).await?;
        on_listening(server.local_addr());
        server.serve(shutdown_signal()).await
    })
}
