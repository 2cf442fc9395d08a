//! Command-line options of the example services.
#![allow(dead_code)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use crate::items::{Items, Store};

pub const USAGE: &str = "options:
  --listen ADDR        address to listen on (default 127.0.0.1:3000)
  --opt-in             check only the preconditions a request carries
                       (default: strict, writes without If-Match get 428)
  --database-url URL   keep items in PostgreSQL (postgres://user@host/db);
                       default: $DATABASE_URL, else in memory";

/// The parsed options.
#[derive(Debug)]
pub struct Args {
    pub listen: SocketAddr,
    pub opt_in: bool,
    pub database_url: Option<String>,
}

/// Parses `--listen ADDR` (or `--listen=ADDR`), `--opt-in` and
/// `--database-url URL`; `database_url` defaults to `env_database_url`
/// (pass `std::env::var("DATABASE_URL").ok()`).
pub fn parse(
    args: impl IntoIterator<Item = String>,
    env_database_url: Option<String>,
) -> Result<Args, String> {
    let mut parsed = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
        opt_in: false,
        database_url: env_database_url.filter(|url| !url.is_empty()),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--listen" => {
                let v = value("--listen")?;
                parsed.listen = v.parse().map_err(|e| {
                    format!("--listen {v:?} is not an address like 127.0.0.1:3000: {e}")
                })?;
            }
            "--opt-in" => parsed.opt_in = true,
            "--database-url" => parsed.database_url = Some(value("--database-url")?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(parsed)
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// What both services do before serving: read the options (and
/// `DATABASE_URL`), open the store, and build the items service and its
/// precondition gate. Errors are printed as `program: message`; the
/// `ExitCode` is what `main` should return.
pub async fn start(program: &str) -> Result<(Args, Items, ifmatch::Gate), ExitCode> {
    let args = match parse(std::env::args().skip(1), std::env::var("DATABASE_URL").ok()) {
        Ok(args) => args,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("{program}: {msg}");
            }
            eprintln!("usage: {program} [options]\n{USAGE}");
            return Err(ExitCode::from(2));
        }
    };
    let store = match Store::open(args.database_url.as_deref()).await {
        Ok(store) => store,
        Err(e) => {
            let url = args.database_url.as_deref().map(redact).unwrap_or_default();
            eprintln!("{program}: cannot use the database at {url}: {e}");
            return Err(ExitCode::FAILURE);
        }
    };
    let gate = crate::items::gate(args.opt_in);
    Ok((args, Items::new(store), gate))
}

/// Announces the address once the service accepts connections (the line
/// scripts and tests wait for).
pub fn announce(addr: SocketAddr) {
    println!("listening on http://{addr}");
    let _ = std::io::stdout().flush();
}
