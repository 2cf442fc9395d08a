//! The items service on axum, with `ifmatch`'s tower `PreconditionLayer`.
//!
//! ```text
//! cargo run --release --features middleware --example axum_items -- --listen 127.0.0.1:3000
//! cargo run --release --features middleware --example axum_items -- \
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

use std::io::Write as _;
use std::process::ExitCode;

use crate::items::{Items, Store};

#[tokio::main]
async fn main() -> ExitCode {
    let args = match cli::parse(std::env::args().skip(1), std::env::var("DATABASE_URL").ok()) {
        Ok(args) => args,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("axum_items: {msg}");
            }
            eprintln!("usage: axum_items [options]\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    let store = match Store::open(args.database_url.as_deref()).await {
        Ok(store) => store,
        Err(e) => {
            let url = args
                .database_url
                .as_deref()
                .map(cli::redact)
                .unwrap_or_default();
            eprintln!("axum_items: cannot use the database at {url}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let app = axum_app::router(Items::new(store), items::gate(args.opt_in));
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("axum_items: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().map_or(args.listen, |a| a);
    println!("listening on http://{addr}");
    let _ = std::io::stdout().flush();
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match axum::serve(listener, app)
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
