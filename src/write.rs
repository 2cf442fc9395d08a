//! The conditional-write contract: how the check and the write become one
//! atomic step (documented on [`Expected`], where rustdoc shows it).

use std::time::SystemTime;

use crate::etag::ETag;
use crate::versioned::{Validators, Versioned};

/// The state a write must still find for it to go ahead: what the
/// preconditions were checked against.
///
/// Evaluating preconditions alone cannot prevent a lost update: between the
/// check and the write another writer can slip in. So the
/// [evaluator](crate::Policy::evaluate) hands back an `Expected` (in
/// [`Outcome::Proceed`](crate::Outcome::Proceed)), and the store performs the write
/// only if that is still the state, in one atomic step (a compare-and-swap
/// under a lock, `UPDATE … WHERE version = $n`, a Redis Lua script that
/// compares and writes, a DynamoDB `ConditionExpression`). When the state has moved, the store
/// reports a [`Conflict`] carrying the now-current validators, and the
/// service answers exactly the 412 a failed precondition gets
/// ([`ProblemTexts::conflict`](crate::ProblemTexts::conflict)).
///
/// ```
/// use ifmatch::{Expected, MemoryStore};
///
/// let store = MemoryStore::new();
/// let v1 = store.put("a", &Expected::Absent, "first".to_owned())?;
/// // Two writers both read v1 ...
/// let expected = Expected::ETag(v1.etag().clone());
/// let v2 = store.put("a", &expected, "second".to_owned())?;
/// // ... the slower one is refused instead of erasing the first change.
/// let refused = store.put("a", &expected, "third".to_owned());
/// // The conflict carries the tag to reload: the 412's `ETag`.
/// assert!(refused.is_err_and(|conflict| conflict.current_etag() == Some(v2.etag())));
/// # Ok::<(), ifmatch::Conflict>(())
/// ```
///
/// A store that can read the current state under its lock should decide
/// with [`admits`](Self::admits), which always knows every variant. A store
/// that must translate the expectation into its own condition (an SQL
/// `WHERE`) matches on it; the enum is `#[non_exhaustive]`, so such a match
/// needs a catch-all arm, and that arm must **refuse the write** (report a
/// conflict): a state the store does not understand is not one it may
/// overwrite.
///
/// # Conditions that hold for more than one state
///
/// An `Expected` names one state, or only that the target exists or not. A
/// request whose conditions hold for several states (`If-Match: *` with
/// `If-None-Match: "x"`, several tags in `If-Match`, `If-Unmodified-Since`,
/// or in opt-in mode `If-None-Match` with tags alone) gets
/// [`ETag`](Self::ETag) of the state it was checked against: a store cannot
/// check "any state but `"x"`" in its compare-and-swap, and
/// [`Exists`](Self::Exists) would let the write land on `"x"`. So a write
/// that lands between the check and the compare-and-swap refuses such a
/// request with 412 (naming the new tag) even when its conditions hold for
/// the new state too; sent again, it goes through. For the same reason
/// [`ConditionalStore::modify`](crate::ConditionalStore::modify) does not
/// apply its change again to the new state: only `If-Match: *` alone, or
/// no condition, leaves the race to the server. This errs on the safe side:
/// no write lands on a state its conditions were not checked against, as
/// long as the state checked has a strong tag. One without (a weak tag, or
/// only a `Last-Modified`, checked against `If-Unmodified-Since`) can only
/// be held to [`Exists`](Self::Exists), and a write can then land on a
/// newer state: give every resource that is written a strong tag.
///
/// ```
/// use std::time::SystemTime;
/// use http::{header, HeaderMap, HeaderValue, Method};
/// use ifmatch::{ETag, Expected, Outcome, Policy};
///
/// let v1 = ETag::from_version(1);
/// let expected = |headers: &HeaderMap| {
///     let eval = Policy::default().evaluate(&Method::PUT, headers, Some(&v1), SystemTime::now());
///     match eval.into_outcome() {
///         Outcome::Proceed { expected, .. } => expected,
///         other => panic!("{other:?}"),
///     }
/// };
/// let mut headers = HeaderMap::new();
/// headers.insert(header::IF_MATCH, HeaderValue::from_static("*"));
/// // `If-Match: *` alone: whatever state exists when the write lands.
/// assert_eq!(expected(&headers), Expected::Exists);
/// // And not "x": held to "v1", the state checked, although a "v2" written
/// // in between would not be "x" either.
/// headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"x\""));
/// assert_eq!(expected(&headers), Expected::ETag(v1.clone()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Expected {
    /// No condition bound the state: none was sent (opt-in mode, or a
    /// method that does not require one), or only ones that say nothing
    /// about which state a write may replace (a passing
    /// `If-Modified-Since` on a GET). The write is unconditional.
    Any,
    /// The target was absent: write only if it still does not exist.
    ///
    /// Two requests get it: a PUT that creates the target under a
    /// condition (`If-None-Match: *`, or, in opt-in mode, any condition
    /// that was checked against the absent target), and a request with any
    /// other method on a target that does not exist, whose preconditions
    /// were not evaluated because the answer is 404 ([RFC 9110 §13.2.1](https://www.rfc-editor.org/rfc/rfc9110#section-13.2.1)). An
    /// opt-in PUT with no condition gets [`Any`](Self::Any). A handler
    /// other than a PUT's must answer that 404 itself, not write: a store's
    /// write under `Absent` would create the target. ([`Gate`](crate::Gate)
    /// answers the 404 of a PATCH or DELETE itself.)
    Absent,
    /// The target existed (`If-Match: *`, or a target without an entity-tag):
    /// write only if it still exists.
    Exists,
    /// The target had this entity-tag: write only if it still has it
    /// (strong comparison).
    ETag(ETag),
}

impl Expected {
    /// Whether a store whose current state is `current` (`None`: absent) may
    /// perform the write. Stores call this under the same lock, or in the
    /// same statement, as the write itself.
    ///
    /// ```
    /// use ifmatch::{ETag, Expected};
    ///
    /// let v1 = ETag::from_version(1);
    /// assert!(Expected::ETag(v1.clone()).admits(Some(&v1)));
    /// assert!(!Expected::ETag(v1.clone()).admits(Some(&ETag::from_version(2))));
    /// assert!(!Expected::ETag(v1.clone()).admits(None::<&ETag>));
    /// assert!(Expected::Absent.admits(None::<&ETag>));
    /// ```
    #[must_use]
    pub fn admits<V: Versioned + ?Sized>(&self, current: Option<&V>) -> bool {
        match (self, current) {
            (Self::Any, _) => true,
            (Self::Absent, current) => current.is_none(),
            (Self::Exists, current) => current.is_some(),
            (Self::ETag(expected), Some(current)) => current
                .etag()
                .is_some_and(|current| current.strong_eq(expected)),
            (Self::ETag(_), None) => false,
        }
    }

    /// The expectation for writing a change computed from `read`, a state
    /// loaded after the preconditions were checked: the read-modify-write
    /// of a PATCH through [`ConditionalStore`](crate::ConditionalStore),
    /// which loads and stores in two steps.
    ///
    /// [`Any`](Self::Any) and [`Exists`](Self::Exists) (no precondition in
    /// opt-in mode, or `If-Match: *`) say only that the target may be
    /// written, not which version the change was made from: writing under
    /// them after a separate read erases whatever landed in between, the
    /// lost update this crate is for. Pinned, they become
    /// [`ETag`](Self::ETag) of `read`'s strong tag, so that write is
    /// refused instead. [`ETag`](Self::ETag) and [`Absent`](Self::Absent)
    /// come back unchanged: they already name one state, and if `read` is
    /// not that state the store refuses the write, as it should. A `read`
    /// without a strong tag cannot be pinned: `Any` and `Exists` become
    /// `Exists`.
    ///
    /// A pinned write that is refused because the target moved on is a race
    /// between the server's own read and write, not a failed condition of
    /// the client's when the request named no version (`Any` or `Exists`
    /// before pinning): read again and reapply the change, a bounded number
    /// of times, rather than answer 412 to a request whose `If-Match: *`
    /// still holds, or that sent no precondition. If the refusal says the
    /// target [is gone](Conflict::is_gone), a request without a precondition
    /// gets 404, one with `If-Match: *` the 412 of a condition now false.
    /// ([`ConditionalStore::modify`](crate::ConditionalStore::modify) does
    /// all this.) `ETag` and `Absent` are the client's own condition: their
    /// refusal is the 412.
    ///
    /// ```
    /// use ifmatch::{Expected, MemoryStore};
    ///
    /// let store = MemoryStore::new();
    /// store.put("a", &Expected::Absent, 1)?;
    /// // Two PATCHes with `If-Match: *` both read version 1 ...
    /// let first = store.get("a").ok_or("a was just stored")?;
    /// let second = first.clone();
    /// store.put("a", &Expected::Exists.pinned_to(&first), first.value() + 10)?;
    /// // ... and the second, computed from the same version, is refused.
    /// let refused = store.put("a", &Expected::Exists.pinned_to(&second), second.value() + 100);
    /// assert!(refused.is_err());
    /// assert_eq!(store.get("a").map(|n| *n.value()), Some(11));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn pinned_to<V: Versioned + ?Sized>(&self, read: &V) -> Self {
        match self {
            Self::Any | Self::Exists => match read.etag() {
                Some(tag) if tag.is_strong() => Self::ETag(tag),
                _ => Self::Exists,
            },
            Self::ETag(_) | Self::Absent => self.clone(),
        }
    }
}

/// A conditional write found the target in another state than expected.
///
/// Map it to the same 412 as a failed precondition with
/// [`ProblemTexts::conflict`](crate::ProblemTexts::conflict): it carries the
/// now-current validators so the client can reload and retry. (A write
/// without a precondition gets 404 for a target that is gone, and a write
/// that admitted any existing state gets 409 for one that lost a race; see
/// [`refused`](Self::refused).)
///
/// What a refusal reports, as a store builds it with
/// [`refused`](Self::refused):
///
/// ```
/// use ifmatch::{Conflict, ETag, Expected};
///
/// let current = ETag::from_version(2);
/// // A write under a stale tag: the target moved on to "v2".
/// let moved = Conflict::refused(&Expected::ETag(ETag::from_version(1)), Some(&current));
/// assert_eq!(moved, Conflict::moved(&current));
/// assert_eq!(moved.current_etag(), Some(&current));
/// assert_eq!(moved.to_string(), "write conflict: the target is now at \"v2\"");
/// // The target was deleted: there is nothing to reload.
/// let gone = Conflict::refused(&Expected::ETag(current.clone()), None::<&ETag>);
/// assert_eq!(gone, Conflict::gone());
/// assert!(gone.is_gone() && gone.current().is_none());
/// // Under `If-Match: *` too.
/// assert_eq!(Conflict::refused(&Expected::Exists, None::<&ETag>), Conflict::gone());
/// // A create (`If-None-Match: *`) found the target there.
/// let exists = Conflict::refused(&Expected::Absent, Some(&current));
/// assert!(exists.already_exists() && !exists.is_gone());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    current: Option<Validators>,
    // The write expected no target and found one.
    exists: bool,
    // The write had no precondition (`Expected::Any`): only a target that
    // is gone refuses it, and that is a 404, not a failed condition.
    unconditional: bool,
    // The write admitted any state of an existing target (`Expected::Any`
    // or `Exists`) and was refused while one exists: it lost a race that
    // no condition decided (see `lost_race`). Never set for a target that
    // is gone, so that such a refusal equals `Conflict::gone()`.
    lost_race: bool,
}

impl Conflict {
    /// The target changed: it now has these validators.
    #[must_use]
    pub fn moved<V: Versioned + ?Sized>(current: &V) -> Self {
        Self {
            current: Some(Validators::of(current)),
            exists: false,
            unconditional: false,
            lost_race: false,
        }
    }

    /// The target no longer exists (it was deleted after it was read), or
    /// does not exist yet.
    ///
    /// A write under a condition that finds it gone is a 412, and a
    /// conflict to [`Retry`](crate::Retry), which runs the step again so
    /// that it re-reads. A step that finds the target missing when it
    /// *reads* has nothing to retry: it returns the 404 kind,
    /// [`Conflict::refused`]`(&Expected::Any, None::<&ETag>)`, as the
    /// `Retry` examples do.
    #[must_use]
    pub fn gone() -> Self {
        Self {
            current: None,
            exists: false,
            unconditional: false,
            lost_race: false,
        }
    }

    /// The conflict for a store whose current state is `current`, before
    /// [`refused`](Self::refused) tells a create that lost a race from a
    /// stale write.
    fn from_current<V: Versioned + ?Sized>(current: Option<&V>) -> Self {
        current.map_or_else(Self::gone, Self::moved)
    }

    /// The conflict for a write under `expected` that found `current`, which
    /// `expected` does not [admit](Expected::admits): what stores report.
    ///
    /// A write that expected no target ([`Expected::Absent`], a create
    /// under `If-None-Match: *`) and found one is
    /// [`already_exists`](Self::already_exists), so that it gets the same
    /// 412 as an `If-None-Match` the gate found false ([RFC 9110 §13.1.2](https://www.rfc-editor.org/rfc/rfc9110#section-13.1.2)),
    /// not the one for a stale `If-Match`. That holds when `current` is
    /// `None` too: a create is refused only by a target that exists, and a
    /// store that reads the state after the refusal (a SQL store, see
    /// [`ConditionalStore`](crate::ConditionalStore)) may find it deleted
    /// since. Its 412 then says the target existed, not that it is gone and
    /// should be created with `If-None-Match: *`, which is what the request
    /// did. (Only a creating PUT writes
    /// under `Absent`: any other method that gets it answers 404 without
    /// writing, see [`Expected::Absent`].) A write under [`Expected::Any`]
    /// (no precondition, in opt-in mode) that found no target, a DELETE
    /// that lost a race to another, is answered 404 rather than 412: there
    /// was no condition to fail. Such a write (or one under
    /// [`Expected::Exists`]) refused while the target exists lost a race
    /// that no condition decided (a SQL statement that waited for a row
    /// another transaction deleted and re-created), and is answered 409,
    /// "send it again", as [`ProblemTexts::conflict`](crate::ProblemTexts::conflict)
    /// says. So such a refusal does not equal [`moved`](Self::moved) of
    /// the same state, while one under `Exists` of a target that is gone
    /// still equals [`gone`](Self::gone).
    ///
    /// ```
    /// use ifmatch::{Conflict, ETag, Expected};
    ///
    /// let winner = ETag::from_version(1);
    /// let lost_race = Conflict::refused(&Expected::Absent, Some(&winner));
    /// assert!(lost_race.already_exists());
    /// let stale = Conflict::refused(&Expected::ETag(ETag::from_version(0)), Some(&winner));
    /// assert!(!stale.already_exists());
    /// // Read after the refusal, the winner was already deleted again.
    /// assert!(Conflict::refused(&Expected::Absent, None::<&ETag>).already_exists());
    /// ```
    #[must_use]
    pub fn refused<V: Versioned + ?Sized>(expected: &Expected, current: Option<&V>) -> Self {
        let mut conflict = Self::from_current(current);
        conflict.exists = *expected == Expected::Absent;
        conflict.unconditional = *expected == Expected::Any;
        conflict.lost_race =
            current.is_some() && matches!(expected, Expected::Any | Expected::Exists);
        conflict
    }

    /// The refusal of a write to a target that is missing before any
    /// condition counts: a PATCH whose read finds nothing, answered 404
    /// whatever its preconditions ([RFC 9110 §13.2.1](https://www.rfc-editor.org/rfc/rfc9110#section-13.2.1): "failures that can be
    /// detected before significant processing occurs take precedence over
    /// the evaluation of preconditions").
    pub(crate) fn not_found() -> Self {
        Self {
            current: None,
            exists: false,
            unconditional: true,
            lost_race: false,
        }
    }

    /// Whether a write that admitted any existing state ([`Expected::Any`]
    /// or [`Expected::Exists`]) was refused while the target exists. The
    /// store's condition (none, or that the target exists) held: an atomic
    /// store refuses such a write only if it lost a race, such as a SQL
    /// statement that waited for a row another transaction deleted and
    /// re-created. Nothing was written, and the same request may be sent
    /// again (to be evaluated anew): 409, not 412.
    pub(crate) fn lost_race(&self) -> bool {
        self.lost_race
    }

    /// Whether a missing target is answered 404: the refused write had no
    /// precondition ([`Expected::Any`]), or the target was missing before
    /// any condition counted ([`not_found`](Self::not_found)).
    pub(crate) fn unconditional(&self) -> bool {
        self.unconditional
    }

    /// Whether the target is gone (as opposed to moved on).
    #[must_use]
    pub fn is_gone(&self) -> bool {
        self.current.is_none()
    }

    /// Whether the write expected no target and found one (see
    /// [`refused`](Self::refused)). Such a conflict may also be
    /// [gone](Self::is_gone), when the target was deleted again before the
    /// store read it for the conflict; it is answered as existing.
    #[must_use]
    pub fn already_exists(&self) -> bool {
        self.exists
    }

    /// The validators of the current state, if the target exists.
    #[must_use]
    pub fn current(&self) -> Option<&Validators> {
        self.current.as_ref()
    }

    /// The current entity-tag, if the target exists and has one.
    #[must_use]
    pub fn current_etag(&self) -> Option<&ETag> {
        self.current.as_ref().and_then(Validators::etag_ref)
    }

    /// The current modification time, if known.
    #[must_use]
    pub fn current_last_modified(&self) -> Option<SystemTime> {
        self.current.as_ref().and_then(Versioned::last_modified)
    }
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.current_etag() {
            Some(tag) => write!(f, "write conflict: the target is now at {tag}"),
            None if self.exists => f.write_str("write conflict: the target already existed"),
            None if self.is_gone() => f.write_str("write conflict: the target does not exist"),
            None => f.write_str("write conflict: the target changed"),
        }
    }
}

impl std::error::Error for Conflict {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_admits_exactly_the_state_it_names() {
        let v1 = ETag::from_version(1);
        let weak = v1.clone().into_weak();
        let none: Option<&ETag> = None;
        assert!(Expected::Any.admits(none));
        assert!(Expected::Any.admits(Some(&v1)));
        assert!(Expected::Absent.admits(none));
        assert!(!Expected::Absent.admits(Some(&v1)));
        assert!(Expected::Exists.admits(Some(&v1)));
        assert!(!Expected::Exists.admits(none));
        assert!(Expected::ETag(v1.clone()).admits(Some(&v1)));
        assert!(!Expected::ETag(v1.clone()).admits(Some(&weak)));
        assert!(!Expected::ETag(weak.clone()).admits(Some(&weak)));
        let no_tag = Validators::modified_at(SystemTime::UNIX_EPOCH);
        assert!(!Expected::ETag(v1).admits(Some(&no_tag)));
    }

    #[test]
    fn pinning_names_the_version_read_and_keeps_exact_expectations() {
        let v1 = ETag::from_version(1);
        let v2 = ETag::from_version(2);
        assert_eq!(Expected::Any.pinned_to(&v1), Expected::ETag(v1.clone()));
        assert_eq!(Expected::Exists.pinned_to(&v1), Expected::ETag(v1.clone()));
        // A named state stays named, even when the read found another one:
        // the store refuses that write.
        assert_eq!(
            Expected::ETag(v2.clone()).pinned_to(&v1),
            Expected::ETag(v2.clone())
        );
        assert_eq!(Expected::Absent.pinned_to(&v1), Expected::Absent);
        // A weak tag or none cannot be compared strongly: the best left is
        // "still exists".
        let weak = v1.clone().into_weak();
        assert_eq!(Expected::Any.pinned_to(&weak), Expected::Exists);
        let no_tag = Validators::modified_at(SystemTime::UNIX_EPOCH);
        assert_eq!(Expected::Any.pinned_to(&no_tag), Expected::Exists);
        assert!(!Expected::Exists.pinned_to(&v1).admits(Some(&v2)));
    }

    #[test]
    fn conflicts_carry_the_current_validators() {
        let c = Conflict::moved(&ETag::from_version(3));
        assert_eq!(c.current_etag(), Some(&ETag::from_version(3)));
        assert!(!c.is_gone());
        assert_eq!(c.to_string(), "write conflict: the target is now at \"v3\"");
        let g = Conflict::from_current(None::<&ETag>);
        assert!(g.is_gone());
        assert_eq!(g.current_etag(), None);
        assert_eq!(g.to_string(), "write conflict: the target does not exist");
        // A refused create, whose target was deleted again before the read.
        let e = Conflict::refused(&Expected::Absent, None::<&ETag>);
        assert!(e.already_exists() && e.is_gone());
        assert_eq!(e.to_string(), "write conflict: the target already existed");
    }

    #[test]
    fn conflicts_hand_back_every_current_validator() {
        // A service that builds its own 412, or reloads to retry, reads the
        // state the write found: its tag and its modification time.
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        let found = Validators::new(ETag::from_version(3)).with_last_modified(at);
        let c = Conflict::refused(&Expected::ETag(ETag::from_version(2)), Some(&found));
        assert_eq!(c.current(), Some(&found));
        assert_eq!(c.current_last_modified(), Some(at));
        // A target without a tag moved on too: it exists, it is not gone.
        let dated = Conflict::moved(&Validators::modified_at(at));
        assert_eq!(dated.current(), Some(&Validators::modified_at(at)));
        assert_eq!(dated.current_last_modified(), Some(at));
        assert_eq!(dated.to_string(), "write conflict: the target changed");
        let gone = Conflict::gone();
        assert_eq!((gone.current(), gone.current_last_modified()), (None, None));
        assert_eq!(
            gone.to_string(),
            "write conflict: the target does not exist"
        );
    }
}
