//! A PostgreSQL store for the items examples: several instances of the
//! service, one database, kept coherent by the database itself.
//!
//! Every write is ONE statement conditioned on the validator the
//! precondition check handed over, e.g.
//!
//! ```sql
//! UPDATE ifmatch_items SET body = $2, version = nextval('ifmatch_items_version'), …
//!  WHERE id = $1 AND version = $3
//! RETURNING body, version, modified_at
//! ```
//!
//! so two instances can never both write over the same version: the row
//! lock PostgreSQL takes for the UPDATE serializes them, and the loser's
//! `WHERE version = $3` no longer matches. A write that matches no row is a
//! conflict; the store then reads the row once more (a plain read, after the
//! write has already been refused) to tell "gone" from "moved on" and to
//! give the 412 the now-current ETag.
//!
//! ETags are `"v<version>"` with versions from one database sequence, so
//! they are a pure function of the stored state: every instance gives the
//! same tag for the same row, across restarts, and a deleted-then-recreated
//! item never gets an old tag back. Last-Modified is the row's
//! `modified_at`, set by the database clock.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, SystemTime};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use ifmatch::{ConditionalStore, Conflict, ETag, Expected, Stored, WriteError, Written};
use serde_json::Value;
use tokio_postgres::{NoTls, Row};

use crate::items::{Failure, Item, StoreError};

/// How long one database operation may take before the request gets a 503.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
/// How long PostgreSQL lets a statement run: less than
/// [`OPERATION_TIMEOUT`], so that the server, not the client, ends it.
const SERVER_TIMEOUT: Duration = Duration::from_secs(4);
/// How long PostgreSQL lets a statement wait for one lock: less than
/// [`POOL_WAIT`]. Each write waiting on a row that something outside the
/// service holds (a long transaction, a migration) keeps its connection;
/// with the pool's worth of them queued on one row, every other request
/// would wait out [`POOL_WAIT`] and get 503, reads of other items too.
/// (A write queued behind another waits for two locks in turn, the row's
/// and the holder's transaction, each up to this long, and at most
/// [`SERVER_TIMEOUT`] in all; the first in the queue frees its connection
/// in time.) The service's own writes hold a row for milliseconds. It
/// applies to the start-up's schema statements too, which wait only for
/// another instance starting at the same moment.
const LOCK_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long a request waits for a free connection.
const POOL_WAIT: Duration = Duration::from_secs(2);
/// How long a request may take to get a working connection in all: the
/// wait for a free one, then checking an idle one before reuse (each
/// stalled one costs a recycle timeout) or opening a new one. Nothing has
/// been sent by then, so running out of it is "nothing was changed", and
/// the operation's own deadline starts only once it has a connection.
const CONNECT_DEADLINE: Duration = Duration::from_secs(3);
/// How long checking an idle connection before reuse may take: an empty
/// query's round trip. Well under [`CONNECT_DEADLINE`], so that a request
/// that meets a dead idle connection (a failover, a firewall that forgot
/// it) still has the time to open a new one; at the full deadline it got a
/// 503 although the database answered.
const RECYCLE_TIMEOUT: Duration = Duration::from_secs(1);
/// How many connections one instance keeps to the database at most.
pub const POOL_SIZE: usize = 16;

const SCHEMA: &str = "
    BEGIN;
    -- Instances may start together: create the schema under one lock.
    SELECT pg_advisory_xact_lock(7321104559);
    CREATE SEQUENCE IF NOT EXISTS ifmatch_items_version;
    CREATE TABLE IF NOT EXISTS ifmatch_items (
        id          text        PRIMARY KEY,
        body        jsonb       NOT NULL,
        version     bigint      NOT NULL,
        modified_at timestamptz NOT NULL
    );
    COMMIT;
";

const RETURNING: &str = "RETURNING body, version, modified_at";

/// The columns the statements read and write, with their types as
/// PostgreSQL's `format_type` names them (those [`SCHEMA`] creates).
const COLUMNS: [(&str, &str); 4] = [
    ("id", "text"),
    ("body", "jsonb"),
    ("version", "bigint"),
    ("modified_at", "timestamp with time zone"),
];

/// [`SCHEMA`] in a few words, for the start-up error.
const EXPECTED_SHAPE: &str = "a table with id text PRIMARY KEY, body jsonb, version bigint and \
                              modified_at timestamptz, and a sequence";

/// What is wrong with the items table and sequence for the store's
/// statements, if anything: a missing or mistyped column, a column the
/// INSERT would leave NULL that may not be, no unique index on `id` alone
/// (which `ON CONFLICT (id)` needs), or a relation of another kind. Reads
/// only the catalogs, which every role may.
async fn shape_problems(client: &deadpool_postgres::Client) -> Result<Vec<String>, StoreError> {
    let mut problems = Vec::new();
    let kinds = client
        .query_one(
            "SELECT (SELECT relkind::text FROM pg_class WHERE oid = to_regclass('ifmatch_items')), \
                    (SELECT relkind::text FROM pg_class \
                      WHERE oid = to_regclass('ifmatch_items_version'))",
            &[],
        )
        .await
        .map_err(db_error)?;
    let (table, sequence): (Option<String>, Option<String>) = (
        kinds.try_get(0).map_err(db_error)?,
        kinds.try_get(1).map_err(db_error)?,
    );
    if !matches!(table.as_deref(), Some("r" | "p")) {
        problems.push("ifmatch_items is not a table".to_owned());
    }
    if sequence.as_deref() != Some("S") {
        problems.push("ifmatch_items_version is not a sequence".to_owned());
    }
    let columns = client
        .query(
            "SELECT attname::text, format_type(atttypid, atttypmod), attnotnull, \
                    atthasdef OR attidentity <> '' \
               FROM pg_attribute \
              WHERE attrelid = to_regclass('ifmatch_items') AND attnum > 0 \
                AND NOT attisdropped \
              ORDER BY attnum",
            &[],
        )
        .await
        .map_err(db_error)?;
    let mut found = Vec::with_capacity(columns.len());
    for row in &columns {
        let name: String = row.try_get(0).map_err(db_error)?;
        let kind: String = row.try_get(1).map_err(db_error)?;
        let not_null: bool = row.try_get(2).map_err(db_error)?;
        // A default, or an identity column's generated value.
        let default: bool = row.try_get(3).map_err(db_error)?;
        found.push((name, kind, not_null && !default));
    }
    for (name, kind) in COLUMNS {
        match found.iter().find(|(n, ..)| n == name) {
            None => problems.push(format!("column {name} ({kind}) is missing")),
            Some((_, other, _)) if other != kind => {
                problems.push(format!("column {name} is {other}, not {kind}"));
            }
            Some(_) => {}
        }
    }
    for (name, _, required) in &found {
        if *required && !COLUMNS.iter().any(|(n, _)| n == name) {
            problems.push(format!(
                "column {name} is NOT NULL without a default, and the service does not set it"
            ));
        }
    }
    let unique: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_index i \
                              JOIN pg_attribute a \
                                ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
                             WHERE i.indrelid = to_regclass('ifmatch_items') \
                               AND i.indisunique AND i.indimmediate AND i.indisvalid \
                               AND i.indnkeyatts = 1 \
                               AND i.indpred IS NULL AND i.indexprs IS NULL \
                               AND a.attname = 'id')",
            &[],
        )
        .await
        .and_then(|row| row.try_get(0))
        .map_err(db_error)?;
    if !unique && found.iter().any(|(n, ..)| n == "id") {
        problems
            .push("column id has no unique index (PRIMARY KEY or UNIQUE on id alone)".to_owned());
    }
    Ok(problems)
}

/// The items table, through a connection pool.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

/// The error and its causes, e.g. "error connecting to server: Connection
/// refused (os error 111)".
fn describe(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// A failure that wrote nothing (no connection, a row that cannot be read).
fn db_error(e: impl std::error::Error) -> StoreError {
    StoreError::unavailable(describe(&e))
}

/// Whether PostgreSQL refused the data of a statement: SQLSTATE class 22
/// (data exception, e.g. U+0000 in `text` or `jsonb`) or 54000
/// (program_limit_exceeded, e.g. an index row too large). The request is
/// at fault there, not the database; the statement was not applied.
fn refused_data(e: &tokio_postgres::Error) -> Option<&tokio_postgres::error::DbError> {
    e.as_db_error().filter(|db| {
        let code = db.code().code();
        // 2200H (sequence_generator_limit_exceeded) is in class 22 too, but
        // it is the version sequence running out, not the request's data.
        (code.starts_with("22") && code != "2200H") || code == "54000"
    })
}

/// A failed statement. If PostgreSQL answered with an error, the statement
/// was not applied (each runs in its own transaction): refused data, or
/// unavailable. If it did not answer (the connection broke), a write may
/// have committed before it did: the outcome is unknown.
fn query_failed(e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = refused_data(&e) {
        return StoreError::refused(db.message());
    }
    let error = StoreError::unavailable(describe(&e));
    if e.as_db_error().is_some() {
        error
    } else {
        error.outcome_unknown()
    }
}

/// Runs a database operation with a deadline, so that a database that went
/// away gives an error (503), never a hang. The deadline may pass after a
/// write committed, so the outcome of a timed-out operation is unknown:
/// get the connection first ([`PgStore::client`]), outside it.
async fn timed<T>(op: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    match tokio::time::timeout(OPERATION_TIMEOUT, op).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::unavailable(format!(
            "the database did not answer within {OPERATION_TIMEOUT:?}"
        ))
        .outcome_unknown()),
    }
}

/// The version a tag of this store names (`"v42"` → 42), if any. Only the
/// exact form this store issues counts: `"v042"` or `"v+42"` name no
/// version, or a stale `If-Match: "v042"` would match version 42 in SQL
/// although it fails the strong comparison (RFC 9110 §8.8.3.2).
fn version_of(tag: &ETag) -> Option<i64> {
    tag.version().and_then(|v| i64::try_from(v).ok())
}

fn stored(row: &Row) -> Result<Stored<Item>, StoreError> {
    let body: Value = row.try_get("body").map_err(db_error)?;
    let version: i64 = row.try_get("version").map_err(db_error)?;
    let modified: SystemTime = row.try_get("modified_at").map_err(db_error)?;
    let Value::Object(item) = body else {
        return Err(StoreError::unavailable(
            "a stored item is not a JSON object",
        ));
    };
    let version = u64::try_from(version).map_err(db_error)?;
    Ok(Stored::new(item, ETag::from_version(version)).with_last_modified(modified))
}

/// One row, by id, over `client`.
async fn read(
    client: &deadpool_postgres::Client,
    id: &str,
) -> Result<Option<Stored<Item>>, StoreError> {
    timed(async {
        let row = client
            .query_opt(
                "SELECT body, version, modified_at FROM ifmatch_items WHERE id = $1",
                &[&id],
            )
            .await;
        match row {
            Ok(row) => row.as_ref().map(stored).transpose(),
            // An id PostgreSQL cannot even compare (e.g. with U+0000)
            // names no row; `Items` refuses such ids before asking, so
            // this only keeps a slip from being a 503.
            Err(e) if refused_data(&e).is_some() => Ok(None),
            Err(e) => Err(query_failed(e)),
        }
    })
    .await
}

impl PgStore {
    /// A connection from the pool within [`CONNECT_DEADLINE`]. A failure
    /// here sent nothing: the request is told nothing was changed.
    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        match tokio::time::timeout(CONNECT_DEADLINE, self.pool.get()).await {
            Ok(client) => client.map_err(db_error),
            Err(_) => Err(StoreError::unavailable(format!(
                "no working database connection within {CONNECT_DEADLINE:?}"
            ))),
        }
    }

    /// Connects, and creates the table if it is missing. Fails with a
    /// readable error when the URL is invalid, the database cannot be
    /// reached, or an existing table is not one the store can use.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::unavailable(format!("invalid database URL: {e}")))?;
        config.connect_timeout(Duration::from_secs(3));
        // The server gives up on a statement before the client's deadline
        // (`timed`) passes: a statement stuck behind a lock is aborted, so
        // it cannot commit later, after the client was told its outcome is
        // unknown, and its connection is free again. The abort is an error
        // PostgreSQL answers with, so it means "nothing written".
        let limits = format!(
            "-c statement_timeout={} -c lock_timeout={}",
            SERVER_TIMEOUT.as_millis(),
            LOCK_TIMEOUT.as_millis()
        );
        let options = match config.get_options() {
            Some(given) => format!("{given} {limits}"),
            None => limits,
        };
        config.options(&options);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // A connection whose operation the client gave up on (a
                // network stall) is checked before reuse, and dropped if it
                // does not answer within `recycle_timeout`.
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            // Each within `CONNECT_DEADLINE`, which bounds them together: a
            // request that got no connection is told nothing was written.
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(Duration::from_secs(3)))
            .recycle_timeout(Some(RECYCLE_TIMEOUT))
            .build()
            .map_err(db_error)?;
        let store = Self { pool };
        let client = store.client().await?;
        timed(async {
            // A role without CREATE on the schema (the least a service
            // needs) can use a schema someone else created: `CREATE … IF
            // NOT EXISTS` checks that right before it looks.
            let exists: bool = client
                .query_one(
                    "SELECT to_regclass('ifmatch_items') IS NOT NULL \
                     AND to_regclass('ifmatch_items_version') IS NOT NULL",
                    &[],
                )
                .await
                .and_then(|row| row.try_get(0))
                .map_err(db_error)?;
            if !exists {
                client.batch_execute(SCHEMA).await.map_err(db_error)?;
            }
            // `CREATE TABLE IF NOT EXISTS` keeps a table of any shape, and
            // one the statements below cannot use would fail every request
            // with a 503: refuse to start instead, saying what is wrong.
            let problems = shape_problems(&client).await?;
            if problems.is_empty() {
                Ok(())
            } else {
                Err(StoreError::unavailable(format!(
                    "the existing table ifmatch_items or sequence ifmatch_items_version is not \
                     what this service needs ({EXPECTED_SHAPE}): {}",
                    problems.join("; ")
                )))
            }
        })
        .await?;
        Ok(store)
    }

    /// Sends `write` (one statement under `expected`, `None` when it matched
    /// no row) and reports its refusal as the contract asks. A refusal that
    /// no condition decided (`lost_race`) is sent again, up to
    /// `RACE_RETRIES` times: under `Exists` (`If-Match: *`) or `Any` (no
    /// precondition) any row may be written, yet one is there now. Under
    /// READ COMMITTED a statement that waited for a row lock re-checks only
    /// the row it waited for: if another transaction deleted that row and
    /// inserted the id again, the statement matches nothing, though the id
    /// was never absent. Nothing was written, so sending it again is safe;
    /// a refusal left after that is answered 409 by the core ("send it
    /// again"), never a 412 for a condition the request did not send.
    async fn until_written<T, Fut>(
        client: &deadpool_postgres::Client,
        id: &str,
        expected: &Expected,
        write: impl Fn() -> Fut,
    ) -> Result<T, WriteError<StoreError>>
    where
        Fut: Future<Output = Result<Option<T>, StoreError>>,
    {
        let mut raced = 0;
        loop {
            match write().await {
                Ok(Some(written)) => return Ok(written),
                Ok(None) => {
                    let refusal = Self::conflict(client, id, expected).await;
                    let lost_race = matches!(expected, Expected::Exists | Expected::Any)
                        && matches!(&refusal, Err(WriteError::Conflict(c)) if !c.is_gone());
                    if !lost_race || raced == RACE_RETRIES {
                        return refusal;
                    }
                    raced += 1;
                }
                Err(e) => return Err(write_failed(e)),
            }
        }
    }

    /// The conflict for a write under `expected` that matched no row: what
    /// is there now, read over the connection the write used. A second
    /// connection from the pool would deadlock it: with as many refused
    /// writes as the pool has connections, each would hold one while
    /// waiting for another, and all would answer 503 after `POOL_WAIT`.
    async fn conflict<T>(
        client: &deadpool_postgres::Client,
        id: &str,
        expected: &Expected,
    ) -> Result<T, WriteError<StoreError>> {
        match read(client, id).await {
            Ok(current) => Err(WriteError::Conflict(Conflict::refused(
                expected,
                current.as_ref(),
            ))),
            // The write was refused: whatever this read met, nothing was
            // written.
            Err(e) => Err(WriteError::NotWritten(e.nothing_written())),
        }
    }
}

/// How many times a write that lost a race no condition decided is sent
/// again (`PgStore::until_written`).
const RACE_RETRIES: u32 = 2;

/// A failed write as the contract reports it: one that may have landed
/// (a timeout, a connection lost after the statement was sent) as
/// `WriteError::Store`, one that certainly wrote nothing (refused, or
/// rolled back after a lock wait) as `WriteError::NotWritten`. The item
/// handlers answer from `StoreError::failure` (a refused value gets 422,
/// not the 503 that `?` would give), but a handler using `?` still tells
/// "nothing was changed" from "may have landed".
fn write_failed(e: StoreError) -> WriteError<StoreError> {
    match e.failure() {
        Failure::OutcomeUnknown => WriteError::Store(e),
        Failure::Unavailable | Failure::Refused => WriteError::NotWritten(e),
    }
}

/// The PostgreSQL store keeps the core's conditional-write contract, so the
/// item handlers are the same as with the in-memory store.
impl ConditionalStore<str> for PgStore {
    type Value = Item;
    type Error = StoreError;

    /// One row, by id.
    async fn load(&self, id: &str) -> Result<Option<Stored<Item>>, StoreError> {
        read(&self.client().await?, id).await
    }

    /// Writes `item` under `id` if the row is in the `expected` state, in
    /// one statement, which also tells whether it created the row.
    async fn store(
        &self,
        id: &str,
        expected: &Expected,
        item: Item,
    ) -> Result<Written<Item>, WriteError<StoreError>> {
        let body = &Value::Object(item);
        let client = &self.client().await.map_err(WriteError::NotWritten)?;
        let write = move || {
            timed(async move {
                let set = "body = $2, version = nextval('ifmatch_items_version'), \
                       modified_at = clock_timestamp()";
                let insert = "INSERT INTO ifmatch_items (id, body, version, modified_at) \
                          VALUES ($1, $2, nextval('ifmatch_items_version'), clock_timestamp())";
                let row = match expected {
                    Expected::Absent => {
                        let sql = format!("{insert} ON CONFLICT (id) DO NOTHING {RETURNING}");
                        client.query_opt(&sql, &[&id, &body]).await
                    }
                    Expected::ETag(tag) => match version_of(tag) {
                        Some(version) => {
                            let sql = format!(
                                "UPDATE ifmatch_items SET {set} WHERE id = $1 AND version = $3 {RETURNING}"
                            );
                            client.query_opt(&sql, &[&id, &body, &version]).await
                        }
                        // Not a tag of this store: it cannot be current.
                        None => Ok(None),
                    },
                    Expected::Exists => {
                        let sql =
                            format!("UPDATE ifmatch_items SET {set} WHERE id = $1 {RETURNING}");
                        client.query_opt(&sql, &[&id, &body]).await
                    }
                    // An upsert. `xmax = 0` holds for the row version the INSERT
                    // made; the version ON CONFLICT DO UPDATE writes carries the
                    // updating transaction in xmax (it locked the row). So the
                    // statement that wrote also says whether it created.
                    Expected::Any => {
                        // The version and `modified_at` are drawn again once
                        // the row is locked: `EXCLUDED`'s were taken before the
                        // statement waited for a concurrent writer, and would
                        // number and date this newer state before that
                        // writer's.
                        let sql = format!(
                            "{insert} ON CONFLICT (id) DO UPDATE SET {set} \
                         {RETURNING}, (xmax = 0) AS created"
                        );
                        client.query_opt(&sql, &[&id, &body]).await
                    }
                    // A state this store does not know how to hold: refuse.
                    _ => Ok(None),
                };
                let Some(row) = row.map_err(query_failed)? else {
                    return Ok(None);
                };
                // From here the write has committed: an unreadable answer
                // leaves the client not knowing what it changed.
                let created = match expected {
                    Expected::Absent => true,
                    Expected::Any => row
                        .try_get("created")
                        .map_err(|e| db_error(e).outcome_unknown())?,
                    _ => false,
                };
                let stored = stored(&row).map_err(StoreError::outcome_unknown)?;
                Ok(Some(Written::new(stored, created)))
            })
        };
        Self::until_written(client, id, expected, write).await
    }

    /// Deletes `id` if the row is in the `expected` state, in one
    /// statement.
    async fn remove(
        &self,
        id: &str,
        expected: &Expected,
    ) -> Result<Stored<Item>, WriteError<StoreError>> {
        let client = &self.client().await.map_err(WriteError::NotWritten)?;
        let delete = move || {
            timed(async move {
                let row = match expected {
                    Expected::ETag(tag) => match version_of(tag) {
                        Some(version) => {
                            let sql = format!(
                                "DELETE FROM ifmatch_items WHERE id = $1 AND version = $2 {RETURNING}"
                            );
                            client.query_opt(&sql, &[&id, &version]).await
                        }
                        None => Ok(None),
                    },
                    Expected::Exists | Expected::Any => {
                        let sql = format!("DELETE FROM ifmatch_items WHERE id = $1 {RETURNING}");
                        client.query_opt(&sql, &[&id]).await
                    }
                    // Absent (or unknown): there is nothing it may delete.
                    _ => Ok(None),
                };
                let row = row.map_err(query_failed)?;
                // The delete has committed if a row came back.
                row.as_ref()
                    .map(stored)
                    .transpose()
                    .map_err(StoreError::outcome_unknown)
            })
        };
        Self::until_written(client, id, expected, delete).await
    }
}
