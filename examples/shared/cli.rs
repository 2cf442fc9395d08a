//! Command-line options of the example services.
#![allow(dead_code)]

use std::net::SocketAddr;

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
