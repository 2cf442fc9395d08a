//! The items service on axum, with `ifmatch`'s tower `PreconditionLayer`.
//!
//! ```text
//! cargo run --release --example axum_items -- --listen 127.0.0.1:3000
//! cargo run --release --example axum_items -- \
//!     --listen 127.0.0.1:3000 --database-url postgres://postgres@127.0.0.1/test
//! ```
//!
//! See README.md for the API and a curl walk-through.

#[path = "../shared/axum_app.rs"]
mod axum_app;
#[path = "../shared/cli.rs"]
mod cli;
#[path = "../shared/items.rs"]
mod items;
#[path = "../shared/postgres.rs"]
mod postgres;

use std::process::ExitCode;

use axum::ServiceExt;
use axum::extract::Request;

#[tokio::main]
async fn main() -> ExitCode {
    let (args, items, gate) = match cli::start("axum_items").await {
        Ok(started) => started,
        Err(code) => return code,
    };
    let app = axum_app::served(axum_app::router(items, gate));
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("axum_items: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    cli::announce(listener.local_addr().map_or(args.listen, |a| a));
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match axum::serve(listener, ServiceExt::<Request>::into_make_service(app))
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("axum_items: {e}");
            ExitCode::FAILURE
        }
    }
}
