//! The items service on axum, with `ifmatch`'s tower `PreconditionLayer`.
//!
//! ```text
//! cargo run --release --features middleware --example axum_items -- --listen 127.0.0.1:3000
//! ```
//!
//! See README.md for the API and a curl walk-through.

#[path = "../shared/axum_app.rs"]
mod axum_app;
#[path = "../shared/cli.rs"]
mod cli;
#[path = "../shared/items.rs"]
mod items;

use std::io::Write as _;
use std::process::ExitCode;

use crate::items::{Items, Store};

#[tokio::main]
async fn main() -> ExitCode {
    let args = match cli::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("axum_items: {msg}");
            }
            eprintln!("usage: axum_items [options]\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    let app = axum_app::router(Items::new(Store::memory()), items::gate(args.opt_in));
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
