//! The items service on actix-web 4, with `ifmatch`'s `Gate` in a
//! middleware (actix-web 4 uses `http` 0.2, so it goes through the
//! raw-bytes entry point).
//!
//! ```text
//! cargo run --release --example actix_items -- --listen 127.0.0.1:3001
//! cargo run --release --example actix_items -- \
//!     --listen 127.0.0.1:3001 --database-url postgres://postgres@127.0.0.1/test
//! ```
//!
//! See README.md for the API and a curl walk-through.

#[path = "../shared/actix_app.rs"]
mod actix_app;
#[path = "../shared/cli.rs"]
mod cli;
#[path = "../shared/items.rs"]
mod items;
#[path = "../shared/postgres.rs"]
mod postgres;

use std::process::ExitCode;

use actix_web::{App, HttpServer};

#[actix_web::main]
async fn main() -> ExitCode {
    let (args, items, gate) = match cli::start("actix_items").await {
        Ok(started) => started,
        Err(code) => return code,
    };
    let configure = actix_app::configure(items, gate);
    let listener = match std::net::TcpListener::bind(args.listen) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("actix_items: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().map_or(args.listen, |a| a);
    let server = match HttpServer::new(move || App::new().configure(configure.clone()))
        .workers(2)
        .listen(listener)
    {
        Ok(server) => server.run(),
        Err(e) => {
            eprintln!("actix_items: cannot serve on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    cli::announce(addr);
    match server.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("actix_items: {e}");
            ExitCode::FAILURE
        }
    }
}
