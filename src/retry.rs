//! Client-side recovery: retry read → modify → conditional write on 412.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use http::StatusCode;

use crate::store::{ModifyError, WriteError};
use crate::write::Conflict;

/// Whether an error means "the resource changed under you": the signal to
/// re-read, reapply the change and try again.
///
/// Implemented for [`Conflict`], [`WriteError`] (its conflict variant),
/// [`StatusCode`] and [`http::Response`] (412 Precondition Failed). A
/// conflict of a write without a precondition that found no target is not
/// one: nothing can be re-read, and a server answers it 404
/// ([`ProblemTexts::conflict`](crate::ProblemTexts::conflict)). Nor is a
/// 409: in general it is a conflict that re-reading does not resolve. (The
/// 409 this crate answers for a change that named no version and kept
/// losing races, [`ProblemKind::Busy`](crate::ProblemKind::Busy), asks for
/// the same request again; a step that wants it retried can report it as
/// a conflict by its problem `type`, by default
/// `https://www.rfc-editor.org/rfc/rfc5789#section-2.2`, the `type_uri` of
/// `ProblemTexts::default().get(ProblemKind::Busy)`.)
///
/// Every 412 is a conflict, including the few that no new read can mend:
/// a condition that can never hold (an `If-Match` whose tags are all weak,
/// which this crate answers with the problem `type`
/// `https://www.rfc-editor.org/rfc/rfc9110#field.if-match`), or a create
/// under `If-None-Match: *` of a target that exists. A step that builds its
/// condition from the read it just made does not send those, unless
/// something between it and the service weakens the tags it reads (a
/// proxy that compresses responses, such as nginx with `gzip` on for the
/// API's `gzip_types`, turns `"v7"` into `W/"v7"`; README, "Behind a
/// reverse proxy"): then every attempt fails the same way. A step that
/// might send them reports them as errors of its own kind, telling them
/// apart by the problem's `type` with
/// [`ProblemTexts::kind_of`](crate::ProblemTexts::kind_of).
/// Implement it for your step's own error type, the one that carries your
/// HTTP client's errors. A foreign type (`reqwest::Error`,
/// `anyhow::Error`) cannot get it (Rust's orphan rule): wrap it in a type
/// of yours, or have the step return the 412 `Response` or `StatusCode`.
///
/// ```
/// use std::time::Duration;
/// use http::StatusCode;
/// use ifmatch::{IsConflict, Retry};
///
/// /// What a read-modify-write step over HTTP fails with.
/// #[derive(Debug)]
/// enum StepError {
///     /// The request could not be sent, or its answer read.
///     Http(reqwest::Error),
///     /// The server answered with an error status.
///     Status(StatusCode),
/// }
///
/// impl IsConflict for StepError {
///     fn is_conflict(&self) -> bool {
///         matches!(self, StepError::Status(status) if status.is_conflict())
///     }
/// }
///
/// let retry = Retry::new().attempts(3).backoff(Duration::ZERO, Duration::ZERO);
/// let run = |status| {
///     let mut attempts = 0;
///     let result = retry.run_blocking(|_| -> Result<(), _> {
///         attempts += 1;
///         Err(StepError::Status(status))
///     });
///     (attempts, result.is_err_and(|err| err.is_conflict()))
/// };
/// // A 412 is tried again, until the attempts run out; a 403 is not.
/// assert_eq!(run(StatusCode::PRECONDITION_FAILED), (3, true));
/// assert_eq!(run(StatusCode::FORBIDDEN), (1, false));
/// ```
pub trait IsConflict {
    /// Whether to retry.
    fn is_conflict(&self) -> bool;
}

impl IsConflict for Conflict {
    fn is_conflict(&self) -> bool {
        !(self.is_gone() && self.unconditional())
    }
}

impl<E> IsConflict for WriteError<E> {
    fn is_conflict(&self) -> bool {
        matches!(self, WriteError::Conflict(c) if c.is_conflict())
    }
}

/// A step that calls [`ConditionalStore::modify`](crate::ConditionalStore::modify)
/// runs again when the write was refused as for [`WriteError`], and on
/// [`ModifyError::Busy`], whose 409 asks for the same request again; not
/// when the read failed or the change did not apply.
impl<R, E> IsConflict for ModifyError<R, E> {
    fn is_conflict(&self) -> bool {
        match self {
            ModifyError::Write(err) => err.is_conflict(),
            ModifyError::Busy(_) => true,
            ModifyError::Read(_) | ModifyError::Change(_) => false,
        }
    }
}

impl IsConflict for StatusCode {
    fn is_conflict(&self) -> bool {
        *self == StatusCode::PRECONDITION_FAILED
    }
}

impl<B> IsConflict for http::Response<B> {
    fn is_conflict(&self) -> bool {
        self.status().is_conflict()
    }
}

/// Runs a read → modify → conditional-write step again when it reports a
/// conflict, a bounded number of times, with jittered exponential backoff
/// between attempts (like Kubernetes' `RetryOnConflict`).
///
/// The step is yours — a closure that reads the current version, applies the
/// change to it and writes it back with `If-Match` — so no HTTP client is
/// involved. Each attempt must re-read: reapplying the change to fresh data
/// is what makes the retry safe. Errors that are not conflicts are returned
/// at once. Over HTTP, the step GETs the resource, keeps its `ETag`, and
/// sends the changed representation with `If-Match` set to that tag; a 412
/// answer is the conflict (return its `StatusCode` or `Response`, or an
/// error type of yours implementing [`IsConflict`]). The crate's
/// `examples/lost_update_demo.rs` does this with `reqwest`.
///
/// Defaults: 5 attempts, 10 ms first delay doubling up to 1 s; each delay is
/// drawn at random between half and all of its nominal value, so that
/// clients that collided do not collide again in lockstep. They suit a
/// resource that a few clients write now and then; where many write the
/// same resource at once, raise the attempts (with 16 clients incrementing
/// one counter as fast as they could through the in-memory example, 5 to
/// 9 % of increments used up 5 attempts, none of 10; through a MariaDB
/// store, whose slower round trips widen the window between read and
/// write, 8 such clients used up 5 attempts on a quarter of theirs).
///
/// When the attempts run out, the last conflict is returned as the error:
/// call [`is_conflict`](IsConflict::is_conflict) on it to tell giving up
/// from another failure.
///
/// ```
/// use ifmatch::{Conflict, ETag, Expected, MemoryStore, Retry};
///
/// let store: MemoryStore<&str, u32> = MemoryStore::new();
/// store.put("n", &Expected::Absent, 41)?;
/// // A missing target is not a conflict: nothing to re-read, no retry.
/// let missing = || Conflict::refused(&Expected::Any, None::<&ETag>);
///
/// let stored = Retry::new().run_blocking(|_attempt| {
///     let current = store.get("n").ok_or_else(missing)?;           // read
///     let next = current.value() + 1;                              // modify
///     store.put("n", &Expected::ETag(current.etag().clone()), next) // write
/// })?;
/// assert_eq!(*stored.value(), 42);
/// # Ok::<(), ifmatch::Conflict>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    attempts: u32,
    first_delay: Duration,
    max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self::new()
    }
}

impl Retry {
    /// 5 attempts, 10 ms first delay, 1 s longest delay.
    #[must_use]
    pub fn new() -> Self {
        Self {
            attempts: 5,
            first_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(1),
        }
    }

    /// The most attempts in all (at least 1).
    #[must_use]
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The nominal delay before the second attempt, doubled for each later
    /// one up to `max`, the longest (a `first` above `max` is lowered to
    /// it).
    #[must_use]
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.first_delay = first.min(max);
        self.max_delay = max;
        self
    }

    /// The delay after the `failed`-th failed attempt (1-based): the nominal
    /// delay `first × 2^(failed-1)`, capped, then jittered into
    /// `[nominal/2, nominal]`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ifmatch::Retry;
    ///
    /// let ms = Duration::from_millis;
    /// let retry = Retry::new().backoff(ms(100), ms(1000));
    /// // After the third failure: nominally 100 ms × 2² = 400 ms.
    /// assert!((ms(200)..=ms(400)).contains(&retry.delay(3)));
    /// // Later ones stop growing at the longest delay.
    /// assert!((ms(500)..=ms(1000)).contains(&retry.delay(30)));
    /// ```
    #[must_use]
    pub fn delay(&self, failed: u32) -> Duration {
        let doublings = failed.saturating_sub(1);
        let first = self.first_delay.as_nanos();
        // In nanoseconds, doubling until the cap however many failures:
        // the shift is taken only while it cannot overflow.
        let nominal = if first == 0 {
            0
        } else if doublings >= first.leading_zeros() {
            u128::MAX
        } else {
            first << doublings
        }
        .min(self.max_delay.as_nanos());
        let nanos = u64::try_from(nominal).unwrap_or(u64::MAX);
        let half = nanos / 2;
        Duration::from_nanos(half + random() % (nanos - half + 1))
    }

    /// Runs `step(attempt)` (attempt counts from 1) until it succeeds, fails
    /// with an error that is not a conflict, or the attempts run out (then
    /// the last conflict is returned), sleeping the thread between attempts.
    /// Not for async code: the sleep blocks the runtime's thread, and every
    /// task on it; use [`run`](Self::run) there.
    ///
    /// # Errors
    ///
    /// The step's error, when it is not a conflict or the last attempt
    /// conflicted too.
    pub fn run_blocking<T, E: IsConflict>(
        &self,
        mut step: impl FnMut(u32) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut attempt = 1;
        loop {
            match step(attempt) {
                Err(e) if e.is_conflict() && attempt < self.attempts => {
                    std::thread::sleep(self.delay(attempt));
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// Like [`run_blocking`](Self::run_blocking), for asynchronous steps.
    /// `sleep` is your runtime's timer (e.g. `tokio::time::sleep`), so the
    /// crate depends on no runtime. The future is `Send` when the step,
    /// its future, `sleep` and its future are, whatever the error: a
    /// conflict is dropped before the sleep, never held across it (spawning
    /// the future still needs a `Send` result). Dropping the future stops
    /// the retries, mid-sleep too.
    ///
    /// Each call of `step` returns a new future, which may borrow what the
    /// closure captured but not mutably: keep a count of attempts in the
    /// `attempt` argument (or a `Cell` outside), not in a variable the
    /// future increments.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ifmatch::Conflict> {
    /// use ifmatch::{Conflict, ETag, Expected, MemoryStore, Retry};
    ///
    /// let store: MemoryStore<&str, u32> = MemoryStore::new();
    /// store.put("n", &Expected::Absent, 1)?;
    /// // A missing target is not a conflict: nothing to re-read, no retry.
    /// let missing = || Conflict::refused(&Expected::Any, None::<&ETag>);
    /// let stored = Retry::new()
    ///     .run(
    ///         |_attempt| async {
    ///             let current = store.get("n").ok_or_else(missing)?;
    ///             store.put("n", &Expected::ETag(current.etag().clone()), current.value() * 2)
    ///         },
    ///         tokio::time::sleep,
    ///     )
    ///     .await?;
    /// assert_eq!(*stored.value(), 2);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`run_blocking`](Self::run_blocking).
    pub async fn run<T, E, F, Fut, S, SFut>(&self, mut step: F, mut sleep: S) -> Result<T, E>
    where
        E: IsConflict,
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        S: FnMut(Duration) -> SFut,
        SFut: Future<Output = ()>,
    {
        let mut attempt = 1;
        loop {
            // The conflict is dropped before the sleep, so that the future
            // does not hold it across the await: it stays `Send` whatever
            // the error (a step's `Rc`, say), and a large error is not kept
            // for the whole backoff.
            {
                let result = step(attempt).await;
                let again = matches!(&result, Err(e) if e.is_conflict()) && attempt < self.attempts;
                if !again {
                    return result;
                }
            }
            sleep(self.delay(attempt)).await;
            attempt += 1;
        }
    }
}

/// A random number for jitter. `RandomState` is seeded per thread from the
/// OS on the platforms std has a random source for, and advanced on every
/// call, which is all jitter needs (no cryptographic quality, no extra
/// dependency). On `wasm32-unknown-unknown` std has none, and its seed may
/// repeat from one instance of a program to the next.
fn random() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u8(0);
    h.finish()
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn modify_errors_are_retried_when_a_new_read_can_mend_them() {
        type E = ModifyError<&'static str, &'static str>;
        let moved = Conflict::moved(&crate::ETag::from_version(2));
        let retried = [
            E::Write(WriteError::Conflict(moved.clone())),
            E::Write(WriteError::Conflict(Conflict::gone())),
            E::Busy(moved),
        ];
        for err in retried {
            assert!(err.is_conflict(), "{err:?}");
        }
        let final_ = [
            E::Read("down"),
            E::Change("does not apply"),
            E::Write(WriteError::Store("lost")),
            E::Write(WriteError::NotWritten("refused")),
            // A write without a condition that found the target gone: 404.
            E::Write(WriteError::Conflict(Conflict::refused(
                &crate::Expected::Any,
                None::<&crate::ETag>,
            ))),
        ];
        for err in final_ {
            assert!(!err.is_conflict(), "{err:?}");
        }
    }

    #[test]
    fn an_unconditional_write_that_finds_nothing_is_not_retried() {
        let store: crate::MemoryStore<&str, u32> = crate::MemoryStore::new();
        let calls = Cell::new(0);
        let retry = Retry::new().backoff(Duration::ZERO, Duration::ZERO);
        let result = retry.run_blocking(|_| {
            calls.set(calls.get() + 1);
            // Fail rather than loop forever.
            assert!(calls.get() <= 1, "call {} of 1", calls.get());
            store.delete("missing", &crate::Expected::Any)
        });
        assert!(result.is_err_and(|c| c.is_gone()));
        assert_eq!(calls.get(), 1, "nothing to re-read: no second attempt");
        // Under a condition, a target that is gone is a conflict as the
        // server sees it (412), and is retried.
        let calls = Cell::new(0);
        let result = retry.attempts(3).run_blocking(|attempt| {
            calls.set(calls.get() + 1);
            assert!(calls.get() <= 3, "call {} of 3", calls.get());
            assert_eq!(attempt, calls.get());
            store.delete("missing", &crate::Expected::Exists)
        });
        assert!(result.is_err());
        assert_eq!(calls.get(), 3);
        let failed: WriteError<std::io::Error> = WriteError::Conflict(crate::Conflict::refused(
            &crate::Expected::Any,
            None::<&crate::ETag>,
        ));
        assert!(!failed.is_conflict());
    }

    /// `run` holds a conflict only until it decides to retry, never across
    /// the sleep: with a step whose error is not `Send`, a caller that
    /// maps the error away can still spawn the retry on a multi-threaded
    /// runtime. (A compile-time check: holding it does not build.)
    #[test]
    fn the_run_future_holds_no_conflict_across_its_sleep() {
        #[derive(Debug)]
        struct Local(#[allow(dead_code)] std::rc::Rc<()>);
        impl IsConflict for Local {
            fn is_conflict(&self) -> bool {
                true
            }
        }
        fn is_send<T: Send>(_: &T) {}
        let retry = Retry::new()
            .attempts(2)
            .backoff(Duration::ZERO, Duration::ZERO);
        let spawnable = async move {
            retry
                .run(
                    |_| async { Err::<(), _>(Local(std::rc::Rc::new(()))) },
                    |_| std::future::ready(()),
                )
                .await
                .is_ok()
        };
        is_send(&spawnable);
    }

    #[test]
    fn a_first_delay_above_the_cap_is_lowered_to_it() {
        let retry = Retry::new().backoff(Duration::from_secs(1), Duration::from_millis(10));
        for failed in 1..10 {
            assert!(retry.delay(failed) <= Duration::from_millis(10));
        }
    }

    #[test]
    fn retries_conflicts_until_success() {
        let calls = Cell::new(0);
        let retry = Retry::new().backoff(Duration::ZERO, Duration::ZERO);
        let result: Result<u32, StatusCode> = retry.run_blocking(|attempt| {
            calls.set(calls.get() + 1);
            assert_eq!(attempt, calls.get());
            if attempt < 3 {
                Err(StatusCode::PRECONDITION_FAILED)
            } else {
                Ok(attempt)
            }
        });
        assert_eq!(result, Ok(3));
    }

    #[test]
    fn gives_up_after_the_last_attempt_with_the_conflict() {
        let calls = Cell::new(0);
        let retry = Retry::new()
            .attempts(4)
            .backoff(Duration::ZERO, Duration::ZERO);
        let result: Result<(), StatusCode> = retry.run_blocking(|attempt| {
            calls.set(calls.get() + 1);
            // Fail rather than loop forever.
            assert!(calls.get() <= 4, "call {} of 4", calls.get());
            assert_eq!(attempt, calls.get());
            Err(StatusCode::PRECONDITION_FAILED)
        });
        assert_eq!(result, Err(StatusCode::PRECONDITION_FAILED));
        assert_eq!(calls.get(), 4);
    }

    #[test]
    fn other_errors_are_not_retried() {
        let calls = Cell::new(0);
        let result: Result<(), StatusCode> = Retry::new().run_blocking(|_| {
            calls.set(calls.get() + 1);
            // Fail rather than loop (and sleep) forever.
            assert!(calls.get() <= 1, "call {} of 1", calls.get());
            Err(StatusCode::SERVICE_UNAVAILABLE)
        });
        assert_eq!(result, Err(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn delays_grow_are_capped_and_jittered() {
        let retry = Retry::new().backoff(Duration::from_millis(10), Duration::from_millis(50));
        for _ in 0..100 {
            let d1 = retry.delay(1);
            assert!(d1 >= Duration::from_millis(5) && d1 <= Duration::from_millis(10));
            let d3 = retry.delay(3);
            assert!(d3 >= Duration::from_millis(20) && d3 <= Duration::from_millis(40));
            let d9 = retry.delay(9);
            assert!(d9 >= Duration::from_millis(25) && d9 <= Duration::from_millis(50));
            assert!(retry.delay(u32::MAX) <= Duration::from_millis(50));
        }
        let samples: std::collections::HashSet<_> = (0..50).map(|_| retry.delay(2)).collect();
        assert!(samples.len() > 1, "delays are not jittered");
    }

    #[test]
    fn delays_keep_doubling_past_32_failures_until_the_cap() {
        // 1 ns doubled 33 times is 2^33 ns (8.6 s), under a 100 s cap.
        let retry = Retry::new().backoff(Duration::from_nanos(1), Duration::from_secs(100));
        for _ in 0..100 {
            let d = retry.delay(34);
            assert!(
                d >= Duration::from_nanos(1 << 32) && d <= Duration::from_nanos(1 << 33),
                "{d:?}"
            );
            let capped = retry.delay(u32::MAX);
            assert!(capped >= Duration::from_secs(50) && capped <= Duration::from_secs(100));
        }
        // A zero first delay stays zero, and the largest durations do not
        // overflow.
        assert_eq!(
            Retry::new()
                .backoff(Duration::ZERO, Duration::ZERO)
                .delay(40),
            Duration::ZERO
        );
        let huge = Retry::new().backoff(Duration::MAX, Duration::MAX);
        assert!(huge.delay(u32::MAX) >= Duration::from_nanos(u64::MAX / 2));
    }

    #[test]
    fn a_412_response_is_a_conflict_and_other_responses_are_not() {
        let response =
            |status: StatusCode| http::Response::builder().status(status).body(()).unwrap();
        assert!(response(StatusCode::PRECONDITION_FAILED).is_conflict());
        for status in [
            StatusCode::OK,
            StatusCode::NOT_FOUND,
            StatusCode::CONFLICT,
            StatusCode::PRECONDITION_REQUIRED,
        ] {
            assert!(!response(status).is_conflict(), "{status}");
        }
        // A step may hand back the response itself.
        let retry = Retry::new().backoff(Duration::ZERO, Duration::ZERO);
        let calls = Cell::new(0);
        let result = retry.run_blocking(|attempt| {
            calls.set(calls.get() + 1);
            // Fail rather than loop forever.
            assert!(calls.get() <= 2, "call {} of 2", calls.get());
            assert_eq!(attempt, calls.get());
            if attempt < 2 {
                Err(response(StatusCode::PRECONDITION_FAILED))
            } else {
                Ok(attempt)
            }
        });
        assert_eq!(result.unwrap(), 2);
        assert_eq!(calls.get(), 2);
        let calls = Cell::new(0);
        let result: Result<(), _> = retry.run_blocking(|_| {
            calls.set(calls.get() + 1);
            assert!(calls.get() <= 1, "call {} of 1", calls.get());
            Err(response(StatusCode::NOT_FOUND))
        });
        assert_eq!(result.unwrap_err().status(), StatusCode::NOT_FOUND);
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn a_write_errors_conflict_is_a_conflict_and_a_store_failure_is_not() {
        let current = crate::ETag::from_version(1);
        let conflict: WriteError<std::io::Error> = WriteError::Conflict(crate::Conflict::refused(
            &crate::Expected::Absent,
            Some(&current),
        ));
        assert!(conflict.is_conflict());
        let failed: WriteError<std::io::Error> =
            WriteError::Store(std::io::Error::other("connection refused"));
        assert!(!failed.is_conflict());
    }

    #[test]
    fn async_run_stops_where_run_blocking_stops() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let retry = Retry::new()
            .attempts(3)
            .backoff(Duration::ZERO, Duration::ZERO);
        let no_sleep = |_| std::future::ready(());
        // Conflicts until the attempts run out: the last conflict.
        let calls = Cell::new(0);
        let result: Result<(), StatusCode> = rt.block_on(retry.run(
            |attempt| {
                calls.set(calls.get() + 1);
                // Fail rather than loop forever.
                assert!(calls.get() <= 3, "call {} of 3", calls.get());
                assert_eq!(attempt, calls.get());
                std::future::ready(Err(StatusCode::PRECONDITION_FAILED))
            },
            no_sleep,
        ));
        assert_eq!(result, Err(StatusCode::PRECONDITION_FAILED));
        assert_eq!(calls.get(), 3);
        // Any other error at once.
        let calls = Cell::new(0);
        let result: Result<(), StatusCode> = rt.block_on(retry.run(
            |_| {
                calls.set(calls.get() + 1);
                assert!(calls.get() <= 3, "call {} of 3", calls.get());
                std::future::ready(Err(StatusCode::SERVICE_UNAVAILABLE))
            },
            no_sleep,
        ));
        assert_eq!(result, Err(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn async_run_uses_the_given_sleep() {
        let slept = Cell::new(0);
        let calls = Cell::new(0);
        let retry = Retry::new();
        let fut = retry.run(
            |attempt| {
                calls.set(calls.get() + 1);
                // Fail rather than loop forever.
                assert!(calls.get() <= 2, "call {} of 2", calls.get());
                assert_eq!(attempt, calls.get());
                async move {
                    if attempt < 2 {
                        Err(Conflict::gone())
                    } else {
                        Ok(attempt)
                    }
                }
            },
            |_| {
                slept.set(slept.get() + 1);
                std::future::ready(())
            },
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(fut).unwrap(), 2);
        assert_eq!(calls.get(), 2);
        assert_eq!(slept.get(), 1);
    }
}
