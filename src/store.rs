//! Stores that write conditionally, and the in-memory reference store.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use crate::etag::ETag;
use crate::versioned::{Validators, Versioned};
use crate::write::{Conflict, Expected};

/// A stored value with its validators, as a [`ConditionalStore`] returns it.
///
/// ```
/// use ifmatch::{ETag, Stored, Versioned};
///
/// let s = Stored::new("body", ETag::from_version(3));
/// assert_eq!(s.etag(), &ETag::from_version(3));
/// assert_eq!(*s.value(), "body");
/// assert_eq!(Versioned::etag(&s), Some(ETag::from_version(3)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<V> {
    value: V,
    etag: ETag,
    last_modified: Option<SystemTime>,
}

impl<V> Stored<V> {
    /// A value and its current entity-tag.
    #[must_use]
    pub fn new(value: V, etag: ETag) -> Self {
        Self {
            value,
            etag,
            last_modified: None,
        }
    }

    /// Sets the modification time.
    #[must_use]
    pub fn with_last_modified(mut self, time: SystemTime) -> Self {
        self.last_modified = Some(time);
        self
    }

    /// The value.
    #[must_use]
    pub fn value(&self) -> &V {
        &self.value
    }

    /// The value, by value.
    #[must_use]
    pub fn into_value(self) -> V {
        self.value
    }

    /// The current entity-tag.
    #[must_use]
    pub fn etag(&self) -> &ETag {
        &self.etag
    }
}

impl<V> Versioned for Stored<V> {
    fn etag(&self) -> Option<ETag> {
        Some(self.etag.clone())
    }

    fn last_modified(&self) -> Option<SystemTime> {
        self.last_modified
    }
}

/// A conditional write that went through: the new state, and whether the
/// write created the target, as [`ConditionalStore::store`] returns it.
///
/// Whether a PUT created its target decides its status ([RFC 9110 §9.3.4](https://www.rfc-editor.org/rfc/rfc9110#section-9.3.4):
/// "If the target resource does not have a current representation and the
/// PUT successfully creates one, then the origin server MUST inform the
/// user agent by sending a 201 (Created) response"; 200 or 204 when it
/// replaced one). Only the store can tell: a write under
/// [`Expected::Any`] (no precondition, in opt-in mode) may find the target
/// present or absent, so the answer must come from the same atomic step as
/// the write ([how, in SQL](ConditionalStore#a-sql-store)).
///
/// ```
/// use ifmatch::{ConditionalStore, ETag, Expected, MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ifmatch::WriteError<std::convert::Infallible>> {
/// let store: MemoryStore<String, &str> = MemoryStore::new();
/// let key = "a".to_owned();
/// let first = store.store(&key, &Expected::Any, "one").await?;
/// assert!(first.created());
/// let second = store.store(&key, &Expected::Any, "two").await?;
/// assert!(!second.created());
/// assert_eq!(second.etag(), &ETag::from_version(2));
/// assert_eq!(second.into_stored().into_value(), "two");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written<V> {
    stored: Stored<V>,
    created: bool,
}

impl<V> Written<V> {
    /// The state a write left, and whether there was no target before it.
    #[must_use]
    pub fn new(stored: Stored<V>, created: bool) -> Self {
        Self { stored, created }
    }

    /// Whether the write created the target (answer a PUT 201 Created).
    #[must_use]
    pub fn created(&self) -> bool {
        self.created
    }

    /// The new state.
    #[must_use]
    pub fn stored(&self) -> &Stored<V> {
        &self.stored
    }

    /// The value written.
    #[must_use]
    pub fn value(&self) -> &V {
        &self.stored.value
    }

    /// The new entity-tag.
    #[must_use]
    pub fn etag(&self) -> &ETag {
        &self.stored.etag
    }

    /// The new state, by value.
    #[must_use]
    pub fn into_stored(self) -> Stored<V> {
        self.stored
    }
}

impl<V> Versioned for Written<V> {
    fn etag(&self) -> Option<ETag> {
        Versioned::etag(&self.stored)
    }

    fn last_modified(&self) -> Option<SystemTime> {
        self.stored.last_modified
    }
}

/// Why a conditional write did not happen.
///
/// A handler answers them apart: a conflict with the 412 of a failed
/// precondition, a failure of the store with a 503, never a 412: one that
/// says nothing was changed for [`NotWritten`](Self::NotWritten), and one
/// that says to look first for [`Store`](Self::Store), whose write may
/// have landed.
///
/// ```
/// use std::io;
/// use http::{header, Response, StatusCode};
/// use ifmatch::{Conflict, ETag, Expected, ProblemTexts, WriteError, Written};
///
/// fn answer<E>(texts: &ProblemTexts, write: Result<Written<String>, WriteError<E>>) -> Response<String> {
///     match write {
///         Ok(written) => Response::new(written.into_stored().into_value()),
///         // Another write came first: 412, with the tag to reload.
///         Err(WriteError::Conflict(conflict)) => texts.conflict(&conflict),
///         // The store failed and knows nothing was written: 503, "try again".
///         Err(WriteError::NotWritten(_)) => texts.unavailable(),
///         // The store failed, perhaps after writing: 503, "look first".
///         Err(_) => texts.unconfirmed(),
///     }
/// }
///
/// let texts = ProblemTexts::default();
/// let stale = Conflict::refused(&Expected::ETag(ETag::from_version(1)), Some(&ETag::from_version(2)));
/// let res = answer::<io::Error>(&texts, Err(stale.into()));
/// assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
/// assert_eq!(res.headers()[header::ETAG], "\"v2\"");
/// let timed_out = WriteError::Store(io::Error::other("no answer within 5 s"));
/// assert_eq!(answer(&texts, Err(timed_out)).status(), StatusCode::SERVICE_UNAVAILABLE);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError<E> {
    /// The target is not in the expected state: answer 412 with
    /// [`ProblemTexts::conflict`](crate::ProblemTexts::conflict).
    #[error(transparent)]
    Conflict(Conflict),
    /// The store failed, and the write may have landed before the failure
    /// (a timeout, a connection lost before the answer): answer 503, never
    /// 412. `?` in a handler under `PreconditionLayer` answers it with
    /// [`ProblemKind::Unconfirmed`](crate::ProblemKind::Unconfirmed) ("may
    /// or may not have been applied"). A store must not send such a write
    /// again by itself, as a write under `If-Match` that already landed
    /// would then be refused as stale. When in doubt, a store reports this.
    #[error("store error")]
    Store(#[source] E),
    /// The store failed, and knows that nothing was written: the write never
    /// left (no connection could be had), or the database rolled it back
    /// (a lock wait that timed out, a deadlock victim). A failed
    /// [`load`](ConditionalStore::load) before a write, in code that reads
    /// and then writes, is one too (`map_err(WriteError::NotWritten)`). Answer 503, never
    /// 412: `?` in a handler under `PreconditionLayer` answers it with
    /// [`ProblemKind::Unavailable`](crate::ProblemKind::Unavailable)
    /// ("nothing was changed"), and the client may send the change again.
    /// Only a database's guarantee makes a failure this one: a timeout of
    /// the client's own, or a lost connection, is [`Store`](Self::Store).
    /// For data the store will never take (a value its column cannot
    /// hold), sending it again does not help: answer that with a 4xx of
    /// your own rather than through `?`.
    #[error("store error; nothing was written")]
    NotWritten(#[source] E),
}

/// A store's compare-and-swap reports a refused write with `?`.
impl<E> From<Conflict> for WriteError<E> {
    fn from(conflict: Conflict) -> Self {
        Self::Conflict(conflict)
    }
}

impl<E> WriteError<E> {
    /// The same error with the store's failure converted by `f`, for a store
    /// that wraps others (one in memory, one in a database) under one error
    /// type. A conflict stays the same conflict.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use ifmatch::{Conflict, WriteError};
    ///
    /// // MemoryStore never fails: its `Infallible` becomes any error type.
    /// let memory: WriteError<Infallible> = WriteError::Conflict(Conflict::gone());
    /// let wrapped: WriteError<std::io::Error> = memory.map_store(|never| match never {});
    /// assert!(matches!(wrapped, WriteError::Conflict(c) if c.is_gone()));
    /// ```
    #[must_use]
    pub fn map_store<F>(self, f: impl FnOnce(E) -> F) -> WriteError<F> {
        match self {
            Self::Conflict(conflict) => WriteError::Conflict(conflict),
            Self::Store(err) => WriteError::Store(f(err)),
            Self::NotWritten(err) => WriteError::NotWritten(f(err)),
        }
    }
}

/// The conditional-write contract between a service and its storage: every
/// write is one atomic compare-and-swap against the [`Expected`] state the
/// evaluator handed back (see [`Expected`]).
///
/// Handlers written against this trait work unchanged with the in-memory
/// [`MemoryStore`] and with a database store (`UPDATE … SET …, version =
/// nextval('seq') WHERE id = $1 AND version = $2 RETURNING …`, see below).
///
/// A PUT handler written against the trait, here run on a [`MemoryStore`].
/// It names the key type as the store borrows it, `str`: a database store
/// keyed by text implements `ConditionalStore<str>`, and a
/// `MemoryStore<String, _>` does too, so the same handler runs on both.
///
/// ```
/// use std::time::SystemTime;
/// use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
/// use ifmatch::{insert_validators, ConditionalStore, Decision, Gate, MemoryStore, WriteError};
///
/// async fn put<S>(store: &S, gate: &Gate, key: &str, headers: &HeaderMap, body: String) -> Response<String>
/// where
///     S: ConditionalStore<str, Value = String>,
/// {
///     let Ok(current) = store.load(key).await else {
///         return gate.unavailable(); // nothing was written
///     };
///     let pre = match gate.check(&Method::PUT, headers, current.as_ref(), SystemTime::now()) {
///         Decision::Proceed(pre) => pre,
///         Decision::Respond(res) => return res,
///     };
///     match store.store(key, pre.expected(), body).await {
///         Ok(written) => {
///             let mut res = Response::new(String::new());
///             *res.status_mut() = if written.created() { StatusCode::CREATED } else { StatusCode::OK };
///             insert_validators(res.headers_mut(), &written);
///             res
///         }
///         Err(WriteError::Conflict(conflict)) => gate.conflict(&conflict),
///         Err(WriteError::NotWritten(_)) => gate.unavailable(), // nothing was written
///         Err(_) => gate.unconfirmed(), // the write may have landed
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store: MemoryStore<String, String> = MemoryStore::new();
/// let (gate, key) = (Gate::new(), "doc");
/// let create = HeaderMap::from_iter([(header::IF_NONE_MATCH, HeaderValue::from_static("*"))]);
/// let res = put(&store, &gate, key, &create, "one".to_owned()).await;
/// assert_eq!(res.status(), StatusCode::CREATED);
/// let update = HeaderMap::from_iter([(header::IF_MATCH, res.headers()[header::ETAG].clone())]);
/// assert_eq!(put(&store, &gate, key, &update, "two".to_owned()).await.status(), StatusCode::OK);
/// // The same tag again is stale.
/// let res = put(&store, &gate, key, &update, "three".to_owned()).await;
/// assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
/// # }
/// ```
///
/// An implementation must:
/// - perform each write only if [`Expected::admits`] the state the write
///   itself finds, in the same atomic step (one locked section, one
///   statement, one transaction);
/// - report a write that finds another state as [`WriteError::Conflict`],
///   built with [`Conflict::refused`] from the state it found, so the
///   412 carries the now-current entity-tag (or says "gone", or for a
///   refused create that the target exists);
/// - derive entity-tags only from what is stored (a version that is never
///   reused, or the content), so every instance agrees on them. Never
///   reused means also across a restore from an older backup, a failover
///   to a replica that lags, or a counter that is evicted: a tag a client
///   still holds must not come back for another state, or its `If-Match`
///   overwrites that state. A store that can lose acknowledged writes
///   takes content tags, or versions that cannot come back (random ones,
///   or a counter with an epoch in the tag that changes on every restore;
///   not the clock, which can step back), or moves its counter past every
///   version it may have issued when it is restored (for the SQL store
///   below, `setval` on the sequence);
/// - report a write that may have reached the store before failing as
///   [`WriteError::Store`] and not send it again by itself: under
///   `If-Match`, a resent write that had landed is refused as stale, and
///   the client is told of a conflict it caused itself. A failure the
///   database guarantees wrote nothing (rolled back, or never sent) is
///   [`WriteError::NotWritten`], which the client is told was not applied;
///   such a write may also be sent again by the store;
/// - with version tags, if a refused write's re-read finds the very state
///   it expected, suspect the store, not the client: it misread its own
///   result (an affected-row count, a stale snapshot), and every retry
///   will be refused alike. (Content tags can legitimately come back: a
///   change from A to B and back to A between the read and the write.)
///
/// # Implementing it
///
/// The methods return `impl Future + Send`, and an `async fn` in the impl
/// fits them: the compiler checks that its future is `Send` (hold no
/// `Rc` or `std::sync::MutexGuard` across an `.await`). A store that
/// counts the writes another one performs:
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use ifmatch::{ConditionalStore, Expected, MemoryStore, Stored, WriteError, Written};
///
/// struct Counted<S> {
///     inner: S,
///     writes: AtomicU64,
/// }
///
/// impl<S: ConditionalStore<str>> ConditionalStore<str> for Counted<S> {
///     type Value = S::Value;
///     type Error = S::Error;
///
///     async fn load(&self, key: &str) -> Result<Option<Stored<S::Value>>, S::Error> {
///         self.inner.load(key).await
///     }
///
///     async fn store(
///         &self,
///         key: &str,
///         expected: &Expected,
///         value: S::Value,
///     ) -> Result<Written<S::Value>, WriteError<S::Error>> {
///         let written = self.inner.store(key, expected, value).await?;
///         self.writes.fetch_add(1, Ordering::Relaxed);
///         Ok(written)
///     }
///
///     async fn remove(
///         &self,
///         key: &str,
///         expected: &Expected,
///     ) -> Result<Stored<S::Value>, WriteError<S::Error>> {
///         let removed = self.inner.remove(key, expected).await?;
///         self.writes.fetch_add(1, Ordering::Relaxed);
///         Ok(removed)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = Counted { inner: MemoryStore::<String, u32>::new(), writes: AtomicU64::new(0) };
/// assert!(store.store("n", &Expected::Absent, 1).await.is_ok());
/// // `modify` is provided: it loads and stores through the methods above.
/// let add_one = |n: u32| Ok::<_, std::convert::Infallible>(n + 1);
/// assert!(store.modify("n", &Expected::Any, 3, add_one).await.is_ok());
/// let current = store.load("n").await.ok().flatten();
/// assert_eq!(current.map(|s| *s.value()), Some(2));
/// assert_eq!(store.writes.load(Ordering::Relaxed), 2);
/// # }
/// ```
///
/// # A SQL store
///
/// With tags from [`ETag::from_version`] over a version column that only
/// grows (a sequence shared by all rows, so that a deleted and re-created
/// row never gets an old number back), each write is one statement chosen by
/// the [`Expected`] variant (PostgreSQL syntax; the `examples/` directory
/// has a complete store):
///
/// ```text
/// Absent    INSERT INTO t (id, body, version) VALUES ($1, $2, nextval('v'))
///             ON CONFLICT (id) DO NOTHING RETURNING version
/// ETag(tag) UPDATE t SET body = $2, version = nextval('v')
///             WHERE id = $1 AND version = $3 RETURNING version
///             -- $3 = tag.version() as a bigint (i64::try_from: a bigint is
///             -- signed, and u64 binds in neither sqlx nor tokio-postgres);
///             -- None or over i64::MAX (a tag this store did not make): refuse
/// Exists    UPDATE t SET body = $2, version = nextval('v') WHERE id = $1 RETURNING version
/// Any       INSERT ... ON CONFLICT (id) DO UPDATE SET body = $2,
///             version = nextval('v') RETURNING version, (xmax = 0) AS created
///             -- not EXCLUDED.version: drawn before waiting for a concurrent
///             -- writer's lock, it would number this newer state before theirs
/// _         refuse: a state the store does not know is not one it may overwrite
/// ```
///
/// A statement that returns no row did not write: read the row then and
/// report [`Conflict::refused`]`(expected, what was read)` (gone if there
/// is none, except for `Absent`: a refused create says the target
/// exists). That read comes after the refusal, so it may see a later
/// state; it chooses the answer's text and tag, and never makes a write
/// under `ETag` or `Absent` happen after all.
/// If the read itself fails, the write still did not happen:
/// [`WriteError::NotWritten`], not [`WriteError::Store`].
/// Read it over the connection the statement used: a second connection
/// from a pool, taken while the first is held, deadlocks the pool once as
/// many writes are refused at once as it has connections.
///
/// Under `Exists` and `Any` that read can find a row: the statement waited
/// for a row lock, and the transaction holding it deleted the row and
/// inserted the id again. PostgreSQL's READ COMMITTED re-checks only the
/// row the statement waited for, so it matched nothing, though the id was
/// never absent. The store's condition held; send the statement again
/// (nothing was written), a few times. A refusal still left is answered
/// 409, "send it again", by
/// [`ProblemTexts::conflict`](crate::ProblemTexts::conflict), not 412. The
/// examples' store does both.
///
/// [`Written::created`] comes from the statement too: `true` for `Absent`,
/// `false` for `ETag` and `Exists`, and for `Any` whatever the database
/// says (`xmax = 0` in PostgreSQL; elsewhere, a write counter column
/// returned as `writes = 1`). `remove` is a `DELETE … RETURNING` with the
/// same conditions.
///
/// In PostgreSQL each such statement is its own transaction, so an error
/// the database answered it with wrote nothing (sqlx's
/// `Error::Database`, tokio-postgres' `as_db_error()`):
/// [`WriteError::NotWritten`], as is a pool that gave no connection. A
/// connection lost, or a timeout of the client's own, after the statement
/// was sent is [`WriteError::Store`]. An error for the data itself
/// (SQLSTATE class 22, such as U+0000 in a `jsonb` string) is also
/// `NotWritten`, but sending it again cannot help: match it in the handler
/// and answer a 4xx before `?` would answer 503 (`examples/shared/postgres.rs`
/// does, for class 22 but `2200H`, the version sequence running out, and for
/// `54000`, such as an index row too large).
///
/// A modification time for `Last-Modified` comes from the clock at the
/// write, not at the statement's start (`clock_timestamp()`, not `now()`):
/// a write that waited for another's row lock would otherwise be dated
/// before the write it waited for, and `If-Modified-Since` with that
/// write's date would get 304 for the newer state.
///
/// ## MySQL and MariaDB
///
/// The same contract, with these differences (found by a store written for
/// MariaDB 10.11 from these docs):
/// - **Affected rows count changed rows, not matched ones**, unless the
///   connection sets `CLIENT_FOUND_ROWS` (mysql_async leaves it off; sqlx
///   and ProxySQL turn it on). Set the version in every `UPDATE`, so that
///   a matched row always changes; then 1 row is the write, 0 the
///   conflict. For `Any` as `INSERT … ON DUPLICATE KEY UPDATE`, 1 is
///   created and 2 updated.
/// - **No `UPDATE … RETURNING`** (MariaDB has it for `INSERT` and
///   `DELETE`; MySQL has none): run the compare-and-swap as the first
///   statement of a transaction, then `SELECT` the row and `COMMIT`. A
///   failure before `COMMIT` wrote nothing once the transaction is surely
///   rolled back (a `ROLLBACK` that succeeded, or the connection closed
///   rather than returned to the pool): [`WriteError::NotWritten`]. A
///   failure while `COMMIT` is on its way, or a lost connection before the
///   rollback is certain, is unknown ([`WriteError::Store`]).
/// - **Creates are a plain `INSERT`**, with the duplicate-key error as the
///   conflict. Never `INSERT IGNORE`: it turns errors into warnings, and
///   an id too long for its column is silently truncated into another key.
/// - **REPEATABLE READ** (the default) reads a snapshot: a conflict's
///   re-read in the same transaction after an earlier plain `SELECT` sees
///   the old state, so the 412 names the client's own stale tag as
///   current. Re-read with a locking read (`LOCK IN SHARE MODE`; MySQL 8
///   also spells it `FOR SHARE`) or in a new transaction. A deadlock victim (1213) and a lock wait that timed out
///   (1205) as the only statement of its transaction are rolled back:
///   [`WriteError::NotWritten`].
/// - **Versions**: MariaDB sequences (`NEXTVAL`) cache 1000 numbers by
///   default, which is fine (they only grow). MySQL has no sequences, and
///   before 8.0 an `AUTO_INCREMENT` counter is recomputed from the highest
///   remaining row on restart, so deleted numbers come back: keep the
///   counter in a row you update. A `TIMESTAMP ON UPDATE CURRENT_TIMESTAMP` column has
///   one-second precision: two writes in one second share an
///   [`ETag::from_timestamp`] tag, and a stale `If-Match` overwrites the
///   first. Take the time from `SYSDATE(6)` (`NOW(6)` is the statement's
///   start), read it as `UNIX_TIMESTAMP(col)` or with the session's
///   `time_zone` set to `'+00:00'`.
/// - **Ids**: MariaDB's default collations (and MySQL 5.7's) compare
///   case-insensitively and ignore trailing spaces, so `Doc` and `doc ` are
///   one row; even `utf8mb4_bin` pads. MySQL 8's default ignores accents
///   (`café` is `cafe`). Use `VARBINARY`, `utf8mb4_nopad_bin` (MariaDB) or
///   `utf8mb4_0900_bin` (MySQL 8).
/// - **JSON**: MySQL's `JSON` type normalizes what it stores (and
///   MariaDB's JSON functions reformat), so a PUT's answer may carry
///   validators only when the stored bytes are the request's ([RFC 9110
///   §9.3.4](https://www.rfc-editor.org/rfc/rfc9110#section-9.3.4)).
pub trait ConditionalStore<K: ?Sized>: Send + Sync {
    /// What is stored under a key.
    type Value: Send;
    /// A failure of the store itself.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The current state under `key`, if any.
    fn load(
        &self,
        key: &K,
    ) -> impl Future<Output = Result<Option<Stored<Self::Value>>, Self::Error>> + Send;

    /// Stores `value` under `key` if the current state is `expected`,
    /// returning the new state and whether the write
    /// [created](Written::created) the target, as found by the write itself.
    fn store(
        &self,
        key: &K,
        expected: &Expected,
        value: Self::Value,
    ) -> impl Future<Output = Result<Written<Self::Value>, WriteError<Self::Error>>> + Send;

    /// Removes `key` if the current state is `expected`, returning what was
    /// removed. Removing an absent key is a conflict that
    /// [is gone](Conflict::is_gone) (answer 404, or 412 under `If-Match`),
    /// and under [`Expected::Absent`], which a removal can never meet, also
    /// one that [already exists](Conflict::already_exists), as every
    /// refusal under `Absent` is ([`Conflict::refused`]`(Absent, …)`), so
    /// its 412 is the refused create's.
    /// ([`Gate`](crate::Gate) never hands a DELETE `Absent`: it answers a
    /// DELETE of a missing target with 404 itself.)
    ///
    /// ```
    /// use ifmatch::{ConditionalStore, Expected, MemoryStore, WriteError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), WriteError<std::convert::Infallible>> {
    /// let store: MemoryStore<String, String> = MemoryStore::new();
    /// let key = "doc".to_owned();
    /// let v1 = store.store(&key, &Expected::Absent, "draft".to_owned()).await?;
    /// let under_v1 = Expected::ETag(v1.etag().clone());
    /// let removed = store.remove(&key, &under_v1).await?;
    /// assert_eq!(removed.into_value(), "draft");
    /// // Nothing left to remove: a conflict that is gone (404, or 412 under `If-Match`).
    /// let again = store.remove(&key, &under_v1).await;
    /// assert!(matches!(again, Err(WriteError::Conflict(conflict)) if conflict.is_gone()));
    /// # Ok(())
    /// # }
    /// ```
    fn remove(
        &self,
        key: &K,
        expected: &Expected,
    ) -> impl Future<Output = Result<Stored<Self::Value>, WriteError<Self::Error>>> + Send;

    /// Reads the value under `key`, applies `change` to it and stores the
    /// result under `expected`, only over the version `change` was given:
    /// a PATCH (RFC 5789) or any other read-modify-write.
    ///
    /// Each attempt loads the current state, checks it against `expected`,
    /// hands the value to `change` and stores what it returns with
    /// `expected` [pinned](Expected::pinned_to) to the state read, so the
    /// write is refused if another one landed in between. Who resolves that
    /// race depends on what the request named:
    ///
    /// - [`Expected::ETag`]: a version (`If-Match: "v3"`, or the tag the
    ///   precondition check found current). Another write in between makes
    ///   the request's condition false: the refusal is returned as
    ///   [`ModifyError::Write`], the 412 with the now-current tag, and the
    ///   change is not applied to the newer version.
    /// - [`Expected::Any`] or [`Expected::Exists`]: no version (no
    ///   precondition in opt-in mode, or `If-Match: *`). The race is the
    ///   server's, not the client's: the state is read again at once (the
    ///   next read sees the write that won, so there is nothing to wait
    ///   for) and `change` applied again, up to `attempts` attempts in all
    ///   (at least one). When every attempt loses, [`ModifyError::Busy`]:
    ///   [RFC 5789 §2.2](https://www.rfc-editor.org/rfc/rfc5789#section-2.2) answers a concurrent modification the client set no
    ///   precondition against with 409 (Conflict).
    ///
    /// Pinning needs the state read to have a strong entity-tag, as the
    /// [contract](ConditionalStore) asks of every store. A state without one
    /// can only be pinned to [`Expected::Exists`], which a write in between
    /// does not refuse.
    ///
    /// A missing target is a [gone](Conflict::is_gone) conflict. Missing
    /// when read, it is answered 404 whatever the request's preconditions,
    /// as [`Gate`](crate::Gate) answers a PATCH of a missing target (RFC
    /// 9110 §13.2.1: the 404 comes before preconditions). Deleted between
    /// the read and the write, it is 404 for a request without a
    /// precondition and the 412 of an `If-Match` now false otherwise. (The
    /// status is the one [`Gate::conflict`](crate::Gate::conflict) and the
    /// middleware's `Response::from` give the conflict.) `change` refusing
    /// the value (a patch that does not apply, a result that is not valid)
    /// ends the modification unwritten with [`ModifyError::Change`].
    ///
    /// `change` may run more than once, each time on a freshly read value;
    /// it should have no other effect than computing the new value. A store
    /// that can read and write in one atomic step may override this method,
    /// keeping its outcomes; a failure after its step may have reached the
    /// store is [`ModifyError::Write`]`(`[`WriteError::Store`]`)`, never
    /// [`ModifyError::Read`], which answers that nothing was changed. The read must see the latest write (a
    /// replica that lags, or an eventually consistent read, makes every
    /// attempt lose). Size `attempts` for the contention: the retries do
    /// not wait, so with many writers of one target over a network a few
    /// attempts end in 409 often (a Redis store with 16 concurrent writers
    /// of one key, in a trial: 3 attempts left more than half of the
    /// changes with a 409), and the client is to send its request again.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use ifmatch::{ConditionalStore, Expected, MemoryStore, ModifyError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = MemoryStore::new();
    /// let v1 = store.put("doc", &Expected::Absent, "one".to_owned())?;
    ///
    /// // `If-Match: *`: applied to whatever is current.
    /// let append = |doc: String| Ok::<_, Infallible>(doc + ", two");
    /// let written = store.modify(&"doc", &Expected::Exists, 3, append).await?;
    /// assert_eq!(written.value(), "one, two");
    ///
    /// // `If-Match` with the first version, which is no longer current.
    /// let stale = Expected::ETag(v1.etag().clone());
    /// let refused = store.modify(&"doc", &stale, 3, append).await;
    /// assert!(matches!(refused, Err(ModifyError::Write(_))));
    ///
    /// // A change that does not apply to the current value writes nothing.
    /// let empty = |doc: String| if doc.is_empty() { Ok(doc) } else { Err("not empty") };
    /// let refused = store.modify(&"doc", &Expected::Any, 3, empty).await;
    /// assert!(matches!(refused, Err(ModifyError::Change("not empty"))));
    /// assert_eq!(store.get("doc").map(|doc| doc.into_value()).as_deref(), Some("one, two"));
    /// # Ok(())
    /// # }
    /// ```
    fn modify<F, R>(
        &self,
        key: &K,
        expected: &Expected,
        attempts: u32,
        mut change: F,
    ) -> impl Future<Output = Result<Written<Self::Value>, ModifyError<R, Self::Error>>> + Send
    where
        K: Sync,
        F: FnMut(Self::Value) -> Result<Self::Value, R> + Send,
    {
        async move {
            // Only a request that named no version goes round again.
            let unpinned = matches!(expected, Expected::Any | Expected::Exists);
            let mut lost = None;
            for _ in 0..attempts.max(1) {
                let current = self.load(key).await.map_err(ModifyError::Read)?;
                let Some(current) = current else {
                    return Err(ModifyError::Write(Conflict::not_found().into()));
                };
                if !expected.admits(Some(&current)) {
                    let refused = Conflict::refused(expected, Some(&current));
                    return Err(ModifyError::Write(refused.into()));
                }
                let pinned = expected.pinned_to(&current);
                let value = change(current.into_value()).map_err(ModifyError::Change)?;
                match self.store(key, &pinned, value).await {
                    Ok(written) => return Ok(written),
                    // Deleted since the read: judged by what the request
                    // expected, not by the pinned tag (404 without a
                    // precondition, the 412 of a condition now false with
                    // one).
                    Err(WriteError::Conflict(c)) if c.is_gone() => {
                        let gone = Conflict::refused(expected, None::<&Stored<Self::Value>>);
                        return Err(ModifyError::Write(gone.into()));
                    }
                    Err(WriteError::Conflict(c)) if unpinned => lost = Some(c),
                    Err(err) => return Err(ModifyError::Write(err)),
                }
            }
            // Every attempt lost a race; `lost` holds the last refusal.
            Err(ModifyError::Busy(lost.unwrap_or_else(Conflict::gone)))
        }
    }
}

/// Why [`ConditionalStore::modify`] ended without a confirmed write: a
/// failed read, the write's refusal or failure (which may have written,
/// unless it is [`WriteError::NotWritten`]),
/// the change's refusal, or lost races.
///
/// Not exhaustive, like [`WriteError`]: a later version may tell apart a
/// way of failing that these variants now share, so a `match` needs a
/// catch-all arm (answer it as the 503 of a write whose outcome is unknown,
/// [`ProblemKind::Unconfirmed`](crate::ProblemKind::Unconfirmed)).
///
/// A PATCH handler that answers each variant with the [`Gate`](crate::Gate)'s
/// responses (under `PreconditionLayer`, `?` does this):
///
/// ```
/// use http::{Response, StatusCode};
/// use ifmatch::{problem_response, ConditionalStore, Expected, Gate, MemoryStore, ModifyError, WriteError};
///
/// async fn append(store: &MemoryStore<String, String>, gate: &Gate, expected: &Expected, tail: &str) -> Response<String> {
///     let change = |doc: String| if tail.is_empty() { Err("nothing to append") } else { Ok(doc + tail) };
///     match store.modify(&"doc".to_owned(), expected, 3, change).await {
///         Ok(written) => Response::new(written.into_stored().into_value()),
///         Err(ModifyError::Read(_)) => gate.unavailable(), // 503, nothing written
///         Err(ModifyError::Write(WriteError::Conflict(conflict))) => gate.conflict(&conflict), // 412, 404
///         Err(ModifyError::Change(why)) => {
///             problem_response(StatusCode::UNPROCESSABLE_ENTITY, "about:blank", "Unprocessable", why)
///         }
///         Err(ModifyError::Busy(_)) => gate.busy(), // 409: send it again
///         Err(ModifyError::Write(WriteError::NotWritten(_))) => gate.unavailable(), // 503, nothing written
///         Err(_) => gate.unconfirmed(), // a failed write: 503, it may have landed
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ifmatch::Conflict> {
/// let (store, gate) = (MemoryStore::new(), Gate::new());
/// let v1 = store.put("doc".to_owned(), &Expected::Absent, "a".to_owned())?;
/// let under_v1 = Expected::ETag(v1.etag().clone());
/// assert_eq!(append(&store, &gate, &under_v1, "b").await.body(), "ab");
/// assert_eq!(append(&store, &gate, &under_v1, "c").await.status(), StatusCode::PRECONDITION_FAILED);
/// assert_eq!(append(&store, &gate, &Expected::Any, "").await.status(), StatusCode::UNPROCESSABLE_ENTITY);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModifyError<R, E> {
    /// The current state could not be read (the store is unavailable).
    /// Nothing was written: a read comes before the write, so unlike a
    /// failed write it leaves no doubt about that (503).
    #[error("the current state could not be read")]
    Read(#[source] E),
    /// The write was refused, or it failed, as for
    /// [`ConditionalStore::store`]. Refused: the target was missing when
    /// read (404), or deleted before the write (404 without a precondition,
    /// 412 with one), or the request's condition is false (412). Failed:
    /// the store is unavailable (503), and may or may not have written,
    /// unless it reports [`WriteError::NotWritten`].
    #[error(transparent)]
    Write(WriteError<E>),
    /// The change did not apply to the current value ([RFC 5789 §2.2](https://www.rfc-editor.org/rfc/rfc5789#section-2.2): 409 or
    /// 422, as the service decides).
    #[error("the change does not apply to the current value")]
    Change(R),
    /// Every attempt lost a race to another write, for a request that named
    /// no version ([RFC 5789 §2.2](https://www.rfc-editor.org/rfc/rfc5789#section-2.2), concurrent modification: 409). Carries
    /// the last refusal, with the now-current validators.
    #[error("the target kept changing: every attempt lost a race to another write")]
    Busy(Conflict),
}

type EtagFn<V> = fn(&V, u64) -> ETag;

/// An in-memory [`ConditionalStore`]: a map behind a mutex, each write a
/// compare-and-swap under the lock.
///
/// The reference implementation of the contract, used by the examples and
/// tests. Entity-tags come from a store-wide version counter that only
/// grows (`"v1"`, `"v2"`, … across all keys), so a key that is deleted and
/// created again never gets back an old tag; use
/// [`with_etags`](Self::with_etags) for content-derived tags.
///
/// The counter lives and dies with the store, like its data: a new store
/// (a restarted process) starts again at `"v1"`, so a tag a client kept
/// from before can match a different state after. That is fine for tests
/// and demos; a store that outlives its processes must take its versions
/// from what it persists (the PostgreSQL example uses a sequence).
///
/// It writes two ways. The inherent methods ([`put`](Self::put),
/// [`update`](Self::update), [`delete`](Self::delete); errors are a
/// [`Conflict`]) are synchronous, for tests and code without a runtime.
/// Handlers should use the [`ConditionalStore`] methods (`store`,
/// `modify`, `remove`; errors are a [`WriteError`] or [`ModifyError`]),
/// the ones a database store implements too, so that one can replace this
/// store without changing them; only `store` tells a create from a
/// replacement ([`Written::created`], for a PUT's 201). Both take the same
/// lock, so they can be mixed.
///
/// ```
/// use ifmatch::{Expected, MemoryStore};
///
/// let store: MemoryStore<String, String> = MemoryStore::new();
/// let created = store.put("a".to_owned(), &Expected::Absent, "one".to_owned())?;
/// assert_eq!(store.get("a"), Some(created));
///
/// // Creating again fails: it exists now.
/// assert!(store.put("a".to_owned(), &Expected::Absent, "two".to_owned()).is_err());
/// # Ok::<(), ifmatch::Conflict>(())
/// ```
pub struct MemoryStore<K, V> {
    inner: Mutex<Inner<K, V>>,
    etag: EtagFn<V>,
}

struct Inner<K, V> {
    map: HashMap<K, Stored<V>>,
    last_version: u64,
}

/// A checked write's new state, with the lock still held to insert it.
type Swapped<'a, K, V> = (MutexGuard<'a, Inner<K, V>>, Stored<V>);

impl<K, V> std::fmt::Debug for MemoryStore<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl<K: Hash + Eq, V> Default for MemoryStore<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq, V> MemoryStore<K, V> {
    /// An empty store with version-derived tags.
    #[must_use]
    pub fn new() -> Self {
        Self::with_etags(|_, version| ETag::from_version(version))
    }

    /// An empty store that derives each entity-tag with `etag(value,
    /// version)`, such as a content tag. The tags must be strong: a write
    /// conditioned on a weak tag never matches (compare-and-swap compares
    /// strongly, [RFC 9110 §13.1.1](https://www.rfc-editor.org/rfc/rfc9110#section-13.1.1)). `etag` runs under the store's lock: it
    /// must not call back into the store.
    ///
    /// [`ETag::from_serialize`] fails only for a value whose `Serialize`
    /// fails or that nests deeper than 256 levels; falling back to the
    /// version keeps such a value's tag unique (the two kinds of tag never
    /// look alike: `"v7"` against 32 base64 characters).
    ///
    /// ```
    /// use ifmatch::{ETag, Expected, MemoryStore};
    /// use serde_json::{json, Value};
    ///
    /// fn content_tag(value: &Value, version: u64) -> ETag {
    ///     ETag::from_serialize(value).unwrap_or_else(|_| ETag::from_version(version))
    /// }
    ///
    /// let store = MemoryStore::with_etags(content_tag);
    /// let a = store.put("a", &Expected::Absent, json!({"x": 1}))?;
    /// assert_eq!(a.etag(), &ETag::from_serialize(&json!({"x": 1}))?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_etags(etag: fn(&V, u64) -> ETag) -> Self {
        Self {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                last_version: 0,
            }),
            etag,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<K, V>> {
        // The user's code that runs under the lock (an `update` closure,
        // the `etag` function, `V::clone`) runs before the map is touched,
        // so a panic there leaves the map as it was: a poisoned map is
        // still consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current state under `key`.
    #[must_use]
    pub fn get<Q>(&self, key: &Q) -> Option<Stored<V>>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.lock().map.get(key).cloned()
    }

    /// The validators of the current state under `key` (its entity-tag and
    /// modification time), without a copy of the value: all that a
    /// precondition check needs, so a resolver that only checks uses this
    /// rather than [`get`](Self::get).
    ///
    /// ```
    /// use ifmatch::{Expected, MemoryStore, Versioned};
    ///
    /// let store = MemoryStore::new();
    /// let doc = store.put("doc", &Expected::Absent, vec![0u8; 1 << 20])?;
    /// let current = store.validators("doc").ok_or("doc was just stored")?;
    /// assert_eq!(current.etag().as_ref(), Some(doc.etag()));
    /// assert_eq!(current.last_modified(), doc.last_modified());
    /// assert!(store.validators("other").is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn validators<Q>(&self, key: &Q) -> Option<Validators>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().map.get(key).map(Validators::of)
    }

    /// Stores `value` under `key` if the current state is `expected`
    /// (compare-and-swap), returning the new state.
    ///
    /// # Errors
    ///
    /// A [`Conflict`] with the current state when `expected` does not admit
    /// it; nothing is written then.
    ///
    /// ```
    /// use ifmatch::{ETag, Expected, MemoryStore};
    ///
    /// let store = MemoryStore::new();
    /// // `If-None-Match: *`: create, only if absent.
    /// let v1 = store.put("doc", &Expected::Absent, "draft")?;
    /// // `If-Match: "v1"`: replace, only if still at v1.
    /// let v2 = store.put("doc", &Expected::ETag(v1.etag().clone()), "final")?;
    /// assert_eq!(v2.etag(), &ETag::from_version(2));
    /// // v1 is stale now: refused, with the current tag for the 412.
    /// let refused = store.put("doc", &Expected::ETag(v1.etag().clone()), "lost");
    /// assert!(refused.is_err_and(|conflict| conflict.current_etag() == Some(v2.etag())));
    /// # Ok::<(), ifmatch::Conflict>(())
    /// ```
    pub fn put(&self, key: K, expected: &Expected, value: V) -> Result<Stored<V>, Conflict>
    where
        V: Clone,
    {
        self.update(key, expected, move |_| value)
    }

    /// Replaces the value under `key` with `change(current)` if the current
    /// state is `expected`, all under one lock: a read-modify-write that no
    /// other writer can interleave with.
    ///
    /// # Errors
    ///
    /// A [`Conflict`] with the current state when `expected` does not admit
    /// it; `change` is not called then. `change` runs under the store's
    /// lock: it must not call back into the store.
    ///
    /// ```
    /// use ifmatch::{ETag, Expected, MemoryStore};
    ///
    /// let store: MemoryStore<&str, u32> = MemoryStore::new();
    /// // A counter: created at 1 (`None`: nothing stored yet), then incremented.
    /// let bump = |n: Option<&u32>| n.map_or(1, |n| n + 1);
    /// store.update("hits", &Expected::Any, bump)?;
    /// let hits = store.update("hits", &Expected::Any, bump)?;
    /// assert_eq!(*hits.value(), 2);
    /// // Under a tag that is not current, `change` is not called.
    /// let stale = store.update("hits", &Expected::ETag(ETag::from_version(1)), |_| unreachable!());
    /// assert!(stale.is_err());
    /// # Ok::<(), ifmatch::Conflict>(())
    /// ```
    pub fn update(
        &self,
        key: K,
        expected: &Expected,
        change: impl FnOnce(Option<&V>) -> V,
    ) -> Result<Stored<V>, Conflict>
    where
        V: Clone,
    {
        let (mut inner, stored) = self.swap(&key, expected, change)?;
        inner.map.insert(key, stored.clone());
        Ok(stored)
    }

    /// [`update`](Self::update) up to the insertion: checks `expected` and
    /// builds the new state under the lock, which it returns held, for the
    /// caller to insert under a key it has (or makes only now).
    fn swap<Q>(
        &self,
        key: &Q,
        expected: &Expected,
        change: impl FnOnce(Option<&V>) -> V,
    ) -> Result<Swapped<'_, K, V>, Conflict>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut inner = self.lock();
        let current = inner.map.get(key);
        if !expected.admits(current) {
            return Err(Conflict::refused(expected, current));
        }
        let value = change(current.map(Stored::value));
        inner.last_version += 1;
        let stored = Stored {
            etag: (self.etag)(&value, inner.last_version),
            value,
            last_modified: Some(SystemTime::now()),
        };
        Ok((inner, stored))
    }

    /// Removes `key` if the current state is `expected`, returning what was
    /// removed.
    ///
    /// # Errors
    ///
    /// A [`Conflict`] when `expected` does not admit the current state, or
    /// when there is nothing to remove ([gone](Conflict::is_gone); under
    /// [`Expected::Absent`] also [already
    /// existing](Conflict::already_exists), as for
    /// [`ConditionalStore::remove`]).
    ///
    /// ```
    /// use ifmatch::{Expected, MemoryStore};
    ///
    /// let store = MemoryStore::new();
    /// let v1 = store.put("doc", &Expected::Absent, "draft")?;
    /// let removed = store.delete("doc", &Expected::ETag(v1.etag().clone()))?;
    /// assert_eq!(*removed.value(), "draft");
    /// assert!(store.is_empty());
    /// // Nothing to delete now: a conflict that is gone (404, or 412 under `If-Match`).
    /// assert!(store.delete("doc", &Expected::Any).is_err_and(|conflict| conflict.is_gone()));
    /// # Ok::<(), ifmatch::Conflict>(())
    /// ```
    pub fn delete<Q>(&self, key: &Q, expected: &Expected) -> Result<Stored<V>, Conflict>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut inner = self.lock();
        let current = inner.map.get(key);
        if current.is_none() || !expected.admits(current) {
            return Err(Conflict::refused(expected, current));
        }
        inner.map.remove(key).ok_or_else(Conflict::gone)
    }

    /// The number of stored keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether the store is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Keyed by `K` or any `Q` that `K` borrows as and that turns into a `K`
/// with `to_owned` (`K: Borrow<Q>`, `Q: ToOwned<Owned = K>`), as `HashMap`
/// lookups are: a `MemoryStore<String, V>` takes a `&str` key, copied only
/// by a write that creates the entry. As with `HashMap::get`, the key's
/// type must be known at the call (`&"a".into()` needs an annotation).
///
/// ```
/// use ifmatch::{ConditionalStore, Expected, MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store: MemoryStore<String, u32> = MemoryStore::new();
/// let id: &str = "a"; // a path segment, say
/// let written = store.store(id, &Expected::Absent, 1).await?;
/// assert!(written.created());
/// assert_eq!(store.load(id).await?.map(|doc| *doc.value()), Some(1));
/// // Keyed by the owned type too.
/// let removed = store.remove(&"a".to_owned(), &Expected::Any).await?;
/// assert_eq!(*removed.value(), 1);
/// # Ok(())
/// # }
/// ```
impl<K, V, Q> ConditionalStore<Q> for MemoryStore<K, V>
where
    K: std::borrow::Borrow<Q> + Hash + Eq + Send + Sync,
    Q: ToOwned<Owned = K> + Hash + Eq + ?Sized + Sync,
    V: Clone + Send + Sync,
{
    type Value = V;
    type Error = Infallible;

    fn load(&self, key: &Q) -> impl Future<Output = Result<Option<Stored<V>>, Infallible>> + Send {
        std::future::ready(Ok(self.get(key)))
    }

    fn store(
        &self,
        key: &Q,
        expected: &Expected,
        value: V,
    ) -> impl Future<Output = Result<Written<V>, WriteError<Infallible>>> + Send {
        let written = self
            .swap(key, expected, |_| value)
            .map(|(mut inner, stored)| {
                // Replacing keeps the key stored; only a create copies `key`.
                let created = match inner.map.get_mut(key) {
                    Some(slot) => {
                        *slot = stored.clone();
                        false
                    }
                    None => {
                        inner.map.insert(key.to_owned(), stored.clone());
                        true
                    }
                };
                Written::new(stored, created)
            });
        std::future::ready(written.map_err(WriteError::Conflict))
    }

    fn remove(
        &self,
        key: &Q,
        expected: &Expected,
    ) -> impl Future<Output = Result<Stored<V>, WriteError<Infallible>>> + Send {
        std::future::ready(self.delete(key, expected).map_err(WriteError::Conflict))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// The errors compare and clone like the `Conflict` they carry, when
    /// the store's error does (`MemoryStore`'s `Infallible`): a test can
    /// `assert_eq!` a write's whole result.
    #[test]
    fn write_and_modify_errors_compare_and_clone_when_their_parts_do() {
        let store: MemoryStore<String, String> = MemoryStore::new();
        let key = "doc".to_owned();
        let v1 = store.put(key.clone(), &Expected::Absent, "a".to_owned());
        let v1 = v1.expect("the first create");
        let refused = run(store.store(&key, &Expected::Absent, "b".to_owned()));
        let conflict = Conflict::refused(&Expected::Absent, Some(&v1));
        assert_eq!(refused, Err(WriteError::Conflict(conflict)));
        assert_eq!(refused.clone(), refused);
        assert_ne!(refused, Err(WriteError::Conflict(Conflict::gone())));

        let modified = run(store.modify(&key, &Expected::Any, 1, |_| Err("no")));
        assert_eq!(modified, Err(ModifyError::Change("no")));
        assert_eq!(modified.clone(), modified);
    }

    #[test]
    fn put_is_a_compare_and_swap() {
        let store: MemoryStore<&str, i32> = MemoryStore::new();
        let v1 = store.put("k", &Expected::Absent, 1).unwrap();
        assert_eq!(v1.etag(), &ETag::from_version(1));
        let stale = Expected::ETag(v1.etag().clone());
        let v2 = store.put("k", &stale, 2).unwrap();
        let err = store.put("k", &stale, 3).unwrap_err();
        assert_eq!(err.current_etag(), Some(v2.etag()));
        assert_eq!(*store.get("k").unwrap().value(), 2);
        assert!(store.put("k", &Expected::Absent, 4).is_err());
        assert!(store.put("k", &Expected::Exists, 5).is_ok());
        assert!(
            store
                .put("other", &Expected::Exists, 5)
                .unwrap_err()
                .is_gone()
        );
    }

    #[test]
    fn delete_then_create_never_reuses_a_tag() {
        let store: MemoryStore<&str, i32> = MemoryStore::new();
        let first = store.put("k", &Expected::Absent, 1).unwrap();
        store
            .delete("k", &Expected::ETag(first.etag().clone()))
            .unwrap();
        assert!(store.delete("k", &Expected::Any).unwrap_err().is_gone());
        let again = store.put("k", &Expected::Absent, 1).unwrap();
        assert_ne!(again.etag(), first.etag());
        assert!(
            store
                .put("k", &Expected::ETag(first.etag().clone()), 2)
                .is_err()
        );
    }

    #[test]
    fn update_applies_the_change_under_the_lock() {
        let store: MemoryStore<&str, i32> = MemoryStore::new();
        store
            .update("n", &Expected::Absent, |v| v.copied().unwrap_or(0) + 1)
            .unwrap();
        let s = store
            .update("n", &Expected::Exists, |v| v.copied().unwrap_or(0) + 1)
            .unwrap();
        assert_eq!(*s.value(), 2);
        let mut called = false;
        let err = store.update("n", &Expected::Absent, |_| {
            called = true;
            0
        });
        assert!(err.is_err());
        assert!(!called);
    }

    #[test]
    fn the_trait_tells_a_create_from_a_replace() {
        use std::future::Future;
        use std::pin::pin;
        use std::task::{Context, Poll, Waker};

        fn now<F: Future>(f: F) -> F::Output {
            match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(out) => out,
                Poll::Pending => panic!("MemoryStore's futures are ready at once"),
            }
        }

        let store: MemoryStore<&str, i32> = MemoryStore::new();
        let created = now(store.store(&"k", &Expected::Any, 1)).unwrap();
        assert!(created.created());
        assert_eq!(created.stored(), &store.get("k").unwrap());
        let replaced = now(store.store(&"k", &Expected::Any, 2)).unwrap();
        assert!(!replaced.created());
        assert_eq!(Versioned::etag(&replaced), Some(ETag::from_version(2)));
        now(store.remove(&"k", &Expected::Any)).unwrap();
        // Created again after a delete: the write found no target.
        assert!(now(store.store(&"k", &Expected::Any, 3)).unwrap().created());
        // A refused write reports no creation, and writes nothing.
        let refused = now(store.store(&"k", &Expected::Absent, 4));
        assert!(matches!(refused, Err(WriteError::Conflict(c)) if c.already_exists()));
        assert_eq!(*store.get("k").unwrap().value(), 3);
    }

    #[test]
    fn a_write_error_carries_a_conflict_or_the_stores_failure_once() {
        use std::error::Error as _;

        fn cas(found: Option<&ETag>) -> Result<(), WriteError<std::io::Error>> {
            // What a store's compare-and-swap writes: `?` on the conflict.
            Err(Conflict::refused(&Expected::Absent, found))?
        }
        let current = ETag::from_version(1);
        assert!(matches!(cas(Some(&current)), Err(WriteError::Conflict(c)) if c.already_exists()));
        // The failure is the source, not repeated in the message, so an
        // error chain names it once.
        let failed: WriteError<std::io::Error> =
            WriteError::Store(std::io::Error::other("connection refused"));
        assert_eq!(failed.to_string(), "store error");
        assert_eq!(failed.source().unwrap().to_string(), "connection refused");
        let failed = failed.map_store(|e| e.kind());
        assert!(matches!(
            failed,
            WriteError::Store(std::io::ErrorKind::Other)
        ));
        // A failure that wrote nothing says so, and stays one when mapped.
        let rolled_back: WriteError<std::io::Error> =
            WriteError::NotWritten(std::io::Error::other("deadlock victim"));
        assert_eq!(rolled_back.to_string(), "store error; nothing was written");
        assert_eq!(rolled_back.source().unwrap().to_string(), "deadlock victim");
        assert!(matches!(
            rolled_back.map_store(|e| e.kind()),
            WriteError::NotWritten(std::io::ErrorKind::Other)
        ));
    }

    #[test]
    fn every_write_records_when_it_happened() {
        let store: MemoryStore<&str, i32> = MemoryStore::new();
        let before = SystemTime::now();
        let put = store.put("k", &Expected::Absent, 1).unwrap();
        let after = SystemTime::now();
        // The evaluator reads it for If-Unmodified-Since and
        // If-Modified-Since, and a response sends it as Last-Modified.
        let at = Versioned::last_modified(&put).expect("a write sets it");
        assert!(before <= at && at <= after);
        assert_eq!(Versioned::last_modified(&store.get("k").unwrap()), Some(at));
        let written = Written::new(put, false);
        assert_eq!(Versioned::last_modified(&written), Some(at));
        // A state built by hand has only the time it is given.
        let s = Stored::new(1, ETag::from_version(1));
        assert_eq!(Versioned::last_modified(&s), None);
        let s = s.with_last_modified(SystemTime::UNIX_EPOCH);
        assert_eq!(Versioned::last_modified(&s), Some(SystemTime::UNIX_EPOCH));
    }

    #[test]
    fn len_counts_the_stored_keys() {
        let store: MemoryStore<&str, i32> = MemoryStore::new();
        assert!(store.is_empty());
        assert_eq!(store.len(), 0);
        store.put("a", &Expected::Absent, 1).unwrap();
        store.put("b", &Expected::Absent, 2).unwrap();
        store.put("b", &Expected::Exists, 3).unwrap();
        assert_eq!(store.len(), 2);
        assert!(!store.is_empty());
        store.delete("a", &Expected::Any).unwrap();
        assert_eq!(store.len(), 1);
        store.delete("b", &Expected::Any).unwrap();
        assert!(store.is_empty());
    }

    #[test]
    fn a_stores_debug_shows_none_of_the_values() {
        let store: MemoryStore<&str, &str> = MemoryStore::new();
        store.put("token", &Expected::Absent, "hunter2").unwrap();
        assert_eq!(format!("{store:?}"), "MemoryStore { .. }");
    }

    #[test]
    fn content_tags_when_asked() {
        let store: MemoryStore<&str, String> =
            MemoryStore::with_etags(|v, _| ETag::from_content(v));
        let s = store.put("k", &Expected::Any, "x".to_owned()).unwrap();
        assert_eq!(s.etag(), &ETag::from_content("x"));
    }

    #[test]
    fn many_threads_doing_read_modify_write_lose_no_update() {
        const THREADS: usize = 8;
        const INCREMENTS: usize = 200;
        let store: Arc<MemoryStore<&str, u64>> = Arc::new(MemoryStore::new());
        store.put("counter", &Expected::Absent, 0).unwrap();
        let start = std::sync::Barrier::new(THREADS);
        let conflicts: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    let store = Arc::clone(&store);
                    let start = &start;
                    s.spawn(move || {
                        start.wait();
                        let mut conflicts = 0;
                        for _ in 0..INCREMENTS {
                            loop {
                                // Read, modify outside the lock, write back
                                // conditionally: the racy pattern HTTP
                                // clients follow.
                                let read = store.get("counter").unwrap();
                                let next = read.value() + 1;
                                std::thread::yield_now();
                                match store.put(
                                    "counter",
                                    &Expected::ETag(read.etag().clone()),
                                    next,
                                ) {
                                    Ok(_) => break,
                                    Err(_) => conflicts += 1,
                                }
                                // Each lost race is to another thread's
                                // write, of which there are at most
                                // (THREADS - 1) * INCREMENTS: more means a
                                // broken compare-and-swap, which would
                                // otherwise keep this loop spinning.
                                assert!(
                                    conflicts < THREADS * INCREMENTS,
                                    "{conflicts} conflicts in one thread: the compare-and-swap never succeeds"
                                );
                            }
                        }
                        conflicts
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(
            *store.get("counter").unwrap().value(),
            (THREADS * INCREMENTS) as u64
        );
        // The race really happened (yield_now between read and write makes
        // it certain on any scheduler): otherwise this test proves nothing.
        assert!(conflicts > 0, "no conflicting write was ever attempted");
    }

    /// Runs a store's future to completion.
    fn run<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    /// A store where another client's write lands right after each read:
    /// `Some(value)` a write, `None` a delete, one per read, first to last.
    struct Racing {
        inner: MemoryStore<&'static str, String>,
        writes: Mutex<std::collections::VecDeque<Option<&'static str>>>,
    }

    impl Racing {
        fn new(value: &str, writes: impl IntoIterator<Item = Option<&'static str>>) -> Self {
            let inner = MemoryStore::new();
            inner.put("k", &Expected::Absent, value.to_owned()).unwrap();
            Self {
                inner,
                writes: Mutex::new(writes.into_iter().collect()),
            }
        }

        fn value(&self) -> Option<String> {
            self.inner.get("k").map(Stored::into_value)
        }
    }

    impl ConditionalStore<&'static str> for Racing {
        type Value = String;
        type Error = Infallible;

        fn load(
            &self,
            key: &&'static str,
        ) -> impl Future<Output = Result<Option<Stored<String>>, Infallible>> + Send {
            let read = self.inner.get(*key);
            match self.writes.lock().unwrap().pop_front() {
                Some(Some(value)) => drop(self.inner.put(key, &Expected::Any, value.to_owned())),
                Some(None) => drop(self.inner.delete(*key, &Expected::Any)),
                None => {}
            }
            std::future::ready(Ok(read))
        }

        fn store(
            &self,
            key: &&'static str,
            expected: &Expected,
            value: String,
        ) -> impl Future<Output = Result<Written<String>, WriteError<Infallible>>> + Send {
            self.inner.store(key, expected, value)
        }

        fn remove(
            &self,
            key: &&'static str,
            expected: &Expected,
        ) -> impl Future<Output = Result<Stored<String>, WriteError<Infallible>>> + Send {
            self.inner.remove(key, expected)
        }
    }

    /// Appends "+" and counts the calls.
    fn append(calls: &mut u32) -> impl FnMut(String) -> Result<String, Infallible> + Send + '_ {
        move |value: String| {
            *calls += 1;
            Ok(value + "+")
        }
    }

    /// The status [`ProblemTexts`](crate::ProblemTexts) answers a refusal
    /// with.
    fn status(conflict: &Conflict) -> u16 {
        crate::ProblemTexts::default()
            .conflict(conflict)
            .status()
            .as_u16()
    }

    #[test]
    fn modify_applies_the_change_to_the_current_value() {
        for expected in [
            Expected::Any,
            Expected::Exists,
            Expected::ETag(ETag::from_version(1)),
        ] {
            let store = Racing::new("a", []);
            let mut calls = 0;
            let written = run(store.modify(&"k", &expected, 3, append(&mut calls))).unwrap();
            assert_eq!(written.value(), "a+", "{expected:?}");
            assert_eq!(written.etag(), &ETag::from_version(2));
            assert!(!written.created());
            assert_eq!(calls, 1);
        }
    }

    #[test]
    fn modify_reapplies_the_change_after_a_race_when_no_version_was_named() {
        // Another write lands between each of the first two reads and
        // their writes: the change goes on top of the last, and none is
        // lost.
        for expected in [Expected::Any, Expected::Exists] {
            let store = Racing::new("a", [Some("b"), Some("c")]);
            let mut calls = 0;
            let written = run(store.modify(&"k", &expected, 3, append(&mut calls))).unwrap();
            assert_eq!(written.value(), "c+", "{expected:?}");
            assert_eq!(calls, 3);
            assert_eq!(store.value().as_deref(), Some("c+"));
        }
    }

    #[test]
    fn modify_gives_up_busy_when_every_attempt_loses() {
        let store = Racing::new("a", [Some("b"), Some("c"), Some("d")]);
        let mut calls = 0;
        let err = run(store.modify(&"k", &Expected::Exists, 3, append(&mut calls))).unwrap_err();
        let ModifyError::Busy(last) = err else {
            panic!("expected Busy, got {err:?}");
        };
        // The last refusal names the version that beat the last attempt.
        assert_eq!(last.current_etag(), Some(&ETag::from_version(4)));
        assert_eq!(calls, 3);
        assert_eq!(store.value().as_deref(), Some("d"));
        // No attempts is one attempt.
        let store = Racing::new("a", [Some("b")]);
        let err = run(store.modify(&"k", &Expected::Any, 0, append(&mut calls))).unwrap_err();
        assert!(matches!(err, ModifyError::Busy(_)), "{err:?}");
        assert_eq!(store.value().as_deref(), Some("b"));
    }

    #[test]
    fn modify_under_a_named_version_is_not_reapplied_to_another() {
        // `If-Match: "v1"` is false once another write lands: the client's
        // 412, with the now-current tag, and nothing written.
        let v1 = Expected::ETag(ETag::from_version(1));
        let store = Racing::new("a", [Some("b")]);
        let mut calls = 0;
        let err = run(store.modify(&"k", &v1, 3, append(&mut calls))).unwrap_err();
        let ModifyError::Write(WriteError::Conflict(c)) = err else {
            panic!("expected a conflict, got {err:?}");
        };
        assert_eq!(c.current_etag(), Some(&ETag::from_version(2)));
        assert_eq!(status(&c), 412);
        assert_eq!(calls, 1);
        assert_eq!(store.value().as_deref(), Some("b"));
        // Stale already at the read: the change is not even computed.
        let err = run(store.modify(&"k", &v1, 3, append(&mut calls))).unwrap_err();
        assert!(matches!(err, ModifyError::Write(WriteError::Conflict(_))));
        assert_eq!(calls, 1);
        // A create's expectation finds the target: already exists.
        let err = run(store.modify(&"k", &Expected::Absent, 3, append(&mut calls))).unwrap_err();
        assert!(
            matches!(&err, ModifyError::Write(WriteError::Conflict(c)) if c.already_exists()),
            "{err:?}"
        );
        assert_eq!(calls, 1);
    }

    /// A store whose first write is refused as if another had landed,
    /// though a read still finds the state the write expected: what a
    /// content-tagged store meets after an A→B→A change between its read
    /// and its write.
    struct RefusesOnce {
        inner: MemoryStore<&'static str, String>,
        refused: std::sync::atomic::AtomicBool,
    }

    impl ConditionalStore<&'static str> for RefusesOnce {
        type Value = String;
        type Error = Infallible;

        fn load(
            &self,
            key: &&'static str,
        ) -> impl Future<Output = Result<Option<Stored<String>>, Infallible>> + Send {
            std::future::ready(Ok(self.inner.get(*key)))
        }

        fn store(
            &self,
            key: &&'static str,
            expected: &Expected,
            value: String,
        ) -> impl Future<Output = Result<Written<String>, WriteError<Infallible>>> + Send {
            let refuse = !self.refused.swap(true, std::sync::atomic::Ordering::SeqCst);
            let current = self.inner.get(*key);
            async move {
                if let (true, Some(current)) = (refuse, current) {
                    return Err(Conflict::moved(&current).into());
                }
                self.inner.store(key, expected, value).await
            }
        }

        fn remove(
            &self,
            key: &&'static str,
            expected: &Expected,
        ) -> impl Future<Output = Result<Stored<String>, WriteError<Infallible>>> + Send {
            self.inner.remove(key, expected)
        }
    }

    #[test]
    fn modify_under_a_named_version_answers_the_first_refusal_even_if_a_reread_matches() {
        // "Only a request that named no version goes round again": under
        // `If-Match` the store's refusal is the client's 412 at once, even
        // where a second read would find the named version again; the
        // change is computed once. Without a named version, the same store
        // goes round and writes.
        let refuses_once = || {
            let inner = MemoryStore::new();
            inner.put("k", &Expected::Absent, "a".to_owned()).unwrap();
            RefusesOnce {
                inner,
                refused: std::sync::atomic::AtomicBool::new(false),
            }
        };
        let store = refuses_once();
        let mut calls = 0;
        let v1 = Expected::ETag(ETag::from_version(1));
        let err = run(store.modify(&"k", &v1, 3, append(&mut calls))).unwrap_err();
        let ModifyError::Write(WriteError::Conflict(c)) = err else {
            panic!("expected the client's conflict, got {err:?}");
        };
        assert_eq!(status(&c), 412);
        assert_eq!(calls, 1);
        assert_eq!(
            store.inner.get("k").map(Stored::into_value).as_deref(),
            Some("a")
        );

        let store = refuses_once();
        let mut calls = 0;
        let written = run(store.modify(&"k", &Expected::Any, 3, append(&mut calls))).unwrap();
        assert_eq!(written.value(), "a+");
        assert_eq!(calls, 2);
    }

    #[test]
    fn modify_of_a_missing_target_is_404_unless_a_condition_saw_it_deleted() {
        let v1 = Expected::ETag(ETag::from_version(1));
        // Missing at the read: 404 before any condition (RFC 9110
        // §13.2.1). Deleted between the read and the write: 404 only
        // without a condition. Either way nothing is created. (A read
        // under `Absent` that finds the target is a create that lost,
        // above.)
        let missing = || {
            let store = Racing::new("a", []);
            store.inner.delete("k", &Expected::Any).unwrap();
            store
        };
        let deleted = || Racing::new("a", [None]);
        for (expected, store, answer) in [
            (Expected::Any, missing(), 404),
            (Expected::Absent, missing(), 404),
            (Expected::Exists, missing(), 404),
            (v1.clone(), missing(), 404),
            (Expected::Any, deleted(), 404),
            (Expected::Exists, deleted(), 412),
            (v1, deleted(), 412),
        ] {
            let read_it = store.value().is_some();
            let mut calls = 0;
            let err = run(store.modify(&"k", &expected, 3, append(&mut calls))).unwrap_err();
            let ModifyError::Write(WriteError::Conflict(c)) = err else {
                panic!("{expected:?}: expected a conflict, got {err:?}");
            };
            assert!(c.is_gone(), "{expected:?}");
            assert_eq!(status(&c), answer, "{expected:?}");
            assert_eq!(store.value(), None, "{expected:?}");
            // The change ran only on a value that was read.
            assert_eq!(calls, u32::from(read_it), "{expected:?}");
        }
    }

    #[test]
    fn modify_writes_nothing_when_the_change_refuses() {
        let store = Racing::new("a", []);
        let err = run(store.modify(&"k", &Expected::Any, 3, |_: String| Err("no")));
        assert!(matches!(err, Err(ModifyError::Change("no"))));
        assert_eq!(store.inner.get("k").unwrap().etag(), &ETag::from_version(1));
    }

    #[test]
    fn modify_tells_a_failed_read_from_a_failed_write() {
        /// A store that fails at reading or, having read, at writing.
        struct Down {
            at_read: bool,
        }
        impl ConditionalStore<str> for Down {
            type Value = u8;
            type Error = std::io::Error;
            async fn load(&self, _: &str) -> Result<Option<Stored<u8>>, std::io::Error> {
                if self.at_read {
                    return Err(std::io::Error::other("down"));
                }
                Ok(Some(Stored::new(0, ETag::from_version(1))))
            }
            async fn store(
                &self,
                _: &str,
                _: &Expected,
                _: u8,
            ) -> Result<Written<u8>, WriteError<std::io::Error>> {
                Err(WriteError::Store(std::io::Error::other("down")))
            }
            async fn remove(
                &self,
                _: &str,
                _: &Expected,
            ) -> Result<Stored<u8>, WriteError<std::io::Error>> {
                unreachable!("modify removes nothing")
            }
        }
        // A failed read wrote nothing for certain; a failed write may have.
        let read = run(Down { at_read: true }.modify("k", &Expected::Any, 3, Ok::<_, Infallible>));
        assert!(matches!(read, Err(ModifyError::Read(_))), "{read:?}");
        let write =
            run(Down { at_read: false }.modify("k", &Expected::Any, 3, Ok::<_, Infallible>));
        assert!(
            matches!(write, Err(ModifyError::Write(WriteError::Store(_)))),
            "{write:?}"
        );
    }

    #[test]
    fn many_threads_modifying_under_if_match_star_lose_no_update() {
        const THREADS: usize = 8;
        const INCREMENTS: usize = 100;
        let store: MemoryStore<&str, u64> = MemoryStore::new();
        store.put("counter", &Expected::Absent, 0).unwrap();
        let start = std::sync::Barrier::new(THREADS);
        let calls: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (store, start) = (&store, &start);
                    s.spawn(move || {
                        start.wait();
                        let mut calls = 0;
                        for _ in 0..INCREMENTS {
                            let increment = |n: u64| {
                                calls += 1;
                                // One call per increment, plus one per race
                                // lost to another thread's write (at most
                                // (THREADS - 1) * INCREMENTS): more means a
                                // broken compare-and-swap, which would
                                // otherwise go round u32::MAX times.
                                assert!(
                                    calls <= THREADS * INCREMENTS,
                                    "{calls} changes computed in one thread: the compare-and-swap never succeeds"
                                );
                                // Between the read and the write, as a
                                // slower handler would be.
                                std::thread::yield_now();
                                Ok::<_, Infallible>(n + 1)
                            };
                            let modified = run(store.modify(
                                &"counter",
                                &Expected::Exists,
                                u32::MAX,
                                increment,
                            ));
                            assert!(modified.is_ok());
                        }
                        calls
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(
            *store.get("counter").unwrap().value(),
            (THREADS * INCREMENTS) as u64
        );
        // Some changes were computed again after losing a race: otherwise
        // this test proves nothing.
        assert!(calls > THREADS * INCREMENTS, "no race was ever lost");
    }
}
