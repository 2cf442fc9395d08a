//! Responses for the outcomes that stop a request: 304, and 412/428 with an
//! RFC 9457 problem-details body.

use std::borrow::Cow;
use std::time::SystemTime;

use http::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_ENCODING, CONTENT_LANGUAGE, CONTENT_LENGTH,
    CONTENT_LOCATION, CONTENT_RANGE, CONTENT_TYPE, DATE, ETAG, EXPIRES, HeaderMap, HeaderValue,
    LAST_MODIFIED, TRAILER, TRANSFER_ENCODING, VARY,
};
use http::{Method, Response, StatusCode};

use crate::date;
use crate::etag::ETag;
use crate::headers::{Field, RequestHeaders};
use crate::list::{self, Scan};
use crate::precondition::{Failed, Outcome};
use crate::versioned::Versioned;
use crate::write::Conflict;

/// The media type of problem bodies ([RFC 9457 §3](https://www.rfc-editor.org/rfc/rfc9457#section-3)).
///
/// ```
/// use http::header::CONTENT_TYPE;
/// use ifmatch::{ProblemTexts, PROBLEM_JSON};
///
/// let res = ProblemTexts::default().precondition_required();
/// // A client reads the body as a problem object only with this type.
/// assert_eq!(res.headers()[CONTENT_TYPE], PROBLEM_JSON);
/// ```
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Which situation a problem response describes.
///
/// Each kind has its own default `type` URI and title, so that a client can
/// tell them apart by `type`, as [RFC 9457 §3.1.1](https://www.rfc-editor.org/rfc/rfc9457#section-3.1.1) asks consumers to ("the
/// problem type's primary identifier"), even where the status is the same.
/// The four 412s use these anchors of RFC 9110: `#status.412` (`Changed`),
/// `#field.if-match` (`Unmatchable`), `#section-13.1.1` (`Gone`; the same
/// section, which says that `*` is false for a target without a current
/// representation) and `#field.if-none-match` (`Exists`). A service that
/// replaces the texts should keep the types distinct too.
///
/// Every response [`ProblemTexts`] builds (and so every problem response of
/// [`Gate`](crate::Gate) and of the middleware's layers) carries its kind in
/// its extensions, for a layer further out that logs or counts them
/// without parsing the body: how many writes were refused as stale
/// (`Changed` on a write; a GET or HEAD under a stale `If-Match` gets it
/// too), how many clients sent no precondition (`Required`). A
/// handler's own 412 that the middleware replaces (a store's conflict)
/// gets one too; responses a service builds with [`problem_response`] or
/// by hand have none.
///
/// ```
/// use ifmatch::{ETag, Failed, ProblemKind, ProblemTexts};
///
/// let res = ProblemTexts::default().precondition_failed(Some(&ETag::from_version(3)), Failed::IfMatch);
/// assert_eq!(res.extensions().get::<ProblemKind>(), Some(&ProblemKind::Changed));
/// ```
///
/// ```
/// use ifmatch::{ETag, Failed, ProblemKind, ProblemTexts};
///
/// let texts = ProblemTexts::default();
/// let current = ETag::from_version(3);
/// // Two 412s: a stale `If-Match`, and a create of a target that exists.
/// let cases = [(Failed::IfMatch, ProblemKind::Changed), (Failed::IfNoneMatch, ProblemKind::Exists)];
/// for (failed, kind) in cases {
///     let res = texts.precondition_failed(Some(&current), failed);
///     assert_eq!(res.status(), 412);
///     let body: serde_json::Value = serde_json::from_str(res.body())?;
///     assert_eq!(body["type"], texts.get(kind).type_uri.as_ref());
/// }
/// // Same status, told apart by `type`.
/// assert_ne!(texts.get(ProblemKind::Changed).type_uri, texts.get(ProblemKind::Exists).type_uri);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// 412: the target changed since the client read it (`If-Match` or
    /// `If-Unmodified-Since` failed, or a conditional write found a newer
    /// version).
    Changed,
    /// 412: `If-Match` could never have matched: it is malformed, or every
    /// tag in it is weak (`W/"…"`), or the target has no strong tag, and
    /// `If-Match` compares strongly ([RFC 9110 §13.1.1](https://www.rfc-editor.org/rfc/rfc9110#section-13.1.1)). The target has not
    /// necessarily changed, so the default text says how to send the tag
    /// (or, for a target without a strong tag, that no tag can match)
    /// instead of claiming a change. Used by [`Gate`](crate::Gate) and the
    /// middleware.
    Unmatchable,
    /// 412: the target does not exist (deleted since the client read it).
    Gone,
    /// 412: `If-None-Match` matched on a write, e.g. `If-None-Match: *` on a
    /// PUT meant to create a target that already exists.
    Exists,
    /// 428: the write carried no precondition.
    Required,
    /// 400: a conditional header field does not follow its grammar (see
    /// [`Evaluation::malformed`](crate::Evaluation::malformed)), for services
    /// that reject such requests instead of applying the RFC's safe outcome.
    Malformed,
    /// 503: the store failed before anything was written (the current
    /// state could not be read, or the store rolled the write back:
    /// [`WriteError::NotWritten`](crate::WriteError::NotWritten)), so
    /// nothing was changed. Never a 412: nothing is known about the
    /// version.
    Unavailable,
    /// 503: a write failed in a way that leaves its outcome unknown (the
    /// store timed out, or its answer was lost), so the change may or may
    /// not have been applied and the client must look before it sends it
    /// again. Type `#section-9.2.2` of RFC 9110, the section on repeating a
    /// request after a failure that hid its outcome.
    Unconfirmed,
    /// 404: a PATCH or DELETE of a target that does not exist, answered by
    /// [`Gate`](crate::Gate) before any precondition ([RFC 9110 §13.2.1](https://www.rfc-editor.org/rfc/rfc9110#section-13.2.1)),
    /// and a write without a precondition that found its target gone
    /// ([`ProblemTexts::conflict`]).
    NotFound,
    /// 409: a change that named no version (`If-Match: *`, or none in
    /// opt-in mode) lost the race to other writes every time it was
    /// applied, so nothing was written: [RFC 5789 §2.2](https://www.rfc-editor.org/rfc/rfc5789#section-2.2)'s answer to a
    /// concurrent modification the client set no precondition against
    /// ([`ModifyError::Busy`](crate::ModifyError::Busy)), or a store
    /// refused such a write once while the target exists, having lost a
    /// race no condition decided ([`ProblemTexts::conflict`]). The client
    /// sends the same request again.
    Busy,
}

/// Whether JSON can name `tag`: a tag with obs-text bytes that are not
/// UTF-8 has no JSON string that stands for it alone (its Latin-1 reading
/// is another tag), so the client must take it from the `ETag` header.
fn nameable(tag: &ETag) -> bool {
    std::str::from_utf8(tag.as_bytes()).is_ok()
}

/// `template` with `{etag}` and `{field}` replaced, in one pass: a tag may
/// itself contain `{field}` (braces are `etagc`), and must be shown as it
/// is.
fn fill(template: &str, etag: &str, field: &str) -> String {
    let mut out = String::with_capacity(template.len() + 2 * etag.len());
    let mut rest = template;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("{etag}") {
            out.push_str(etag);
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{field}") {
            out.push_str(field);
            rest = after;
        } else {
            out.push('{');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The texts of one kind of problem response.
///
/// In `detail`, `{etag}` is replaced by the current entity-tag (e.g.
/// `"v7"`), by `(none)` when the target has none, or by `(see the ETag
/// header)` when the tag holds obs-text bytes that are not UTF-8, which a
/// JSON string cannot name exactly; and `{field}` by the
/// name of the malformed header field. (For a response without a strong
/// tag to name, the [`untagged_detail`](Self::untagged_detail) is used
/// when there is one: the default texts of [`ProblemKind::Changed`],
/// [`ProblemKind::Exists`] and [`ProblemKind::Unmatchable`] have one
/// without `{etag}`, so that they do not advise sending `If-Match: (none)`,
/// or a weak tag, which `If-Match` never matches. A text built with
/// [`new`](Self::new) has none until
/// [`with_untagged_detail`](Self::with_untagged_detail) gives it one.)
///
/// ```
/// use ifmatch::{ETag, Failed, ProblemKind, ProblemText, ProblemTexts};
///
/// let texts = ProblemTexts::default().set(ProblemKind::Changed, ProblemText::new(
///     "https://example.com/problems/edited-elsewhere",
///     "Edited elsewhere",
///     "Someone saved version {etag} first. Reload it and try again.",
/// ));
/// let res = texts.precondition_failed(Some(&ETag::from_version(9)), Failed::IfMatch);
/// let body: serde_json::Value = serde_json::from_str(res.body())?;
/// assert_eq!(body["title"], "Edited elsewhere");
/// assert_eq!(body["detail"], "Someone saved version \"v9\" first. Reload it and try again.");
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// Build one with [`new`](Self::new): it is `#[non_exhaustive]`, so that
/// members RFC 9457 also defines (`instance`, extension members) can be
/// added without breaking code that builds texts. Its fields stay public to
/// read and change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProblemText {
    /// The `type` member: a URI that identifies the problem type.
    pub type_uri: Cow<'static, str>,
    /// The `title` member: a short, human-readable summary of the type.
    pub title: Cow<'static, str>,
    /// The `detail` member: what happened and how to recover.
    pub detail: Cow<'static, str>,
    /// The `detail` used instead when the response has no strong
    /// entity-tag to name (the target has none, or only a weak one, or one
    /// JSON cannot name): `None` uses `detail`, whose `{etag}` then reads
    /// `(none)` or the weak tag. See [`with_untagged_detail`](Self::with_untagged_detail).
    /// The default texts of `Changed`, `Exists` and `Unmatchable` have one:
    /// a text made from a clone of them with a new `detail` (a
    /// translation) keeps it, so replace or clear it too.
    pub untagged_detail: Option<Cow<'static, str>>,
}

impl ProblemText {
    /// The texts of a problem type: its `type` URI, its `title`, and the
    /// `detail` (with the placeholders above).
    #[must_use]
    pub fn new(
        type_uri: impl Into<Cow<'static, str>>,
        title: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            type_uri: type_uri.into(),
            title: title.into(),
            detail: detail.into(),
            untagged_detail: None,
        }
    }

    /// Sets the `detail` for a response with no strong entity-tag to name,
    /// so that a text whose `detail` advises `If-Match: {etag}` does not
    /// advise `If-Match: (none)`, or a weak tag, which `If-Match` never
    /// matches ([RFC 9110 §13.1.1](https://www.rfc-editor.org/rfc/rfc9110#section-13.1.1)).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use ifmatch::{ETag, Failed, ProblemKind, ProblemText, ProblemTexts, Validators};
    ///
    /// let texts = ProblemTexts::default().set(
    ///     ProblemKind::Changed,
    ///     ProblemText::new(
    ///         "https://example.com/problems/edited-elsewhere",
    ///         "Edited elsewhere",
    ///         "Someone saved this note first. Reload it and send If-Match: {etag}.",
    ///     )
    ///     .with_untagged_detail("Someone saved this note first. Reload it and try again."),
    /// );
    /// let detail = |res: http::Response<String>| -> Result<String, serde_json::Error> {
    ///     let body: serde_json::Value = serde_json::from_str(res.body())?;
    ///     Ok(body["detail"].as_str().unwrap_or_default().to_owned())
    /// };
    /// let tagged = texts.precondition_failed(Some(&ETag::from_version(9)), Failed::IfMatch);
    /// assert_eq!(detail(tagged)?, "Someone saved this note first. Reload it and send If-Match: \"v9\".");
    /// // A note known only by its modification time (If-Unmodified-Since failed).
    /// let dated = Validators::modified_at(UNIX_EPOCH + Duration::from_secs(784_111_777));
    /// let untagged = texts.precondition_failed(Some(&dated), Failed::IfUnmodifiedSince);
    /// assert_eq!(detail(untagged)?, "Someone saved this note first. Reload it and try again.");
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    #[must_use]
    pub fn with_untagged_detail(mut self, detail: impl Into<Cow<'static, str>>) -> Self {
        self.untagged_detail = Some(detail.into());
        self
    }
}

/// The default `Changed` detail for a state without an entity-tag.
const UNTAGGED_CHANGED: &str = "This item was changed after you loaded it (by someone else, or \
     by an earlier request of yours), so this change was not applied. Load the current version, \
     reapply your change if it is still needed, and send it again, conditioned on the version \
     you loaded.";
/// The default `Exists` detail for a state without an entity-tag.
const UNTAGGED_EXISTS: &str = "Your request asked to act only if this item did not exist, or was \
     at none of the versions it named, but it exists, so nothing was changed. To change it, load \
     the current version, reapply your change, and send it again, conditioned on the version you \
     loaded.";

/// The default `Changed` detail for a GET or HEAD, which changes nothing.
const READ_CHANGED: &str = "This item was changed after you loaded it; its current version has \
     ETag {etag}. Load it again, and send any change to it with If-Match: {etag}.";
/// The same, for a state without a tag to advise.
const READ_UNTAGGED_CHANGED: &str = "This item was changed after you loaded it. Load it again, \
     and send any change to it conditioned on the version you loaded.";

/// The default `Unmatchable` detail when no tag can be shown: the state has
/// no strong entity-tag (no tag-based `If-Match` can hold), or JSON cannot
/// name it.
const UNTAGGED_UNMATCHABLE: &str = "Your If-Match header cannot match the current version of \
     this item, so nothing was changed: it is empty or not a valid list of entity-tags, its tags \
     are all weak (W/\"...\"), which a change is never compared with, or the item has no \
     entity-tag a change can be compared with. Load the item again and send the ETag header of \
     that response in If-Match, with the double quotes and without W/ (a proxy that compresses \
     responses may have added W/ to it). If the response has no ETag, or sending it without W/ \
     gets this same answer, this item cannot be changed under If-Match.";

/// Builds the responses for the outcomes that stop a request, with texts a
/// person can act on. Replace any of them with [`set`](Self::set).
///
/// Every problem response built here (412, 428, and the 400, 404, 409 and
/// 503 of [`ProblemKind`]) carries an [RFC 9457](https://www.rfc-editor.org/rfc/rfc9457)
/// `application/problem+json` body with `type`, `title`, `status` and
/// `detail`; a 412 also carries the current entity-tag, both in the `ETag`
/// header and as the `etag` extension member, so the client can reload and
/// retry. (A tag with obs-text bytes that are not UTF-8 is only in the
/// header: no JSON string names it.)
///
/// ```
/// use http::StatusCode;
/// use ifmatch::{ETag, Failed, ProblemTexts};
///
/// let current = ETag::from_version(8);
/// let res = ProblemTexts::default().precondition_failed(Some(&current), Failed::IfMatch);
/// assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
/// assert_eq!(res.headers()["etag"], "\"v8\"");
/// assert_eq!(res.headers()["content-type"], "application/problem+json");
/// let body: serde_json::Value = serde_json::from_str(res.body())?;
/// assert_eq!(body["status"], 412);
/// assert_eq!(body["etag"], "\"v8\"");
/// assert!(body["detail"].as_str().is_some_and(|detail| detail.contains("If-Match: \"v8\"")));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProblemTexts {
    changed: ProblemText,
    unmatchable: ProblemText,
    gone: ProblemText,
    exists: ProblemText,
    required: ProblemText,
    malformed: ProblemText,
    unavailable: ProblemText,
    unconfirmed: ProblemText,
    not_found: ProblemText,
    busy: ProblemText,
    // Whether `Changed` still has its default text, which has details of
    // its own for a GET or HEAD ([`READ_CHANGED`], [`READ_UNTAGGED_CHANGED`]):
    // a read changes nothing, so "this change was not applied" is wrong.
    default_changed: bool,
}

impl Default for ProblemTexts {
    fn default() -> Self {
        Self {
            changed: ProblemText::new(
                "https://www.rfc-editor.org/rfc/rfc9110#status.412",
                "This item was changed since you loaded it",
                "This item was changed after you loaded it (by someone else, or by an \
                 earlier request of yours), so this change was not applied. Load the current \
                 version (ETag {etag}), reapply your change if it is still needed, and send \
                 it again with If-Match: {etag}.",
            )
            .with_untagged_detail(UNTAGGED_CHANGED),
            unmatchable: ProblemText::new(
                "https://www.rfc-editor.org/rfc/rfc9110#field.if-match",
                "The If-Match header cannot match any version",
                "Your If-Match header names no version a change can be checked against: it \
                 is empty, it is not a valid list of entity-tags, or its tags are all weak \
                 (W/\"...\"), which a change is never compared with. Nothing was changed. The current \
                 version has ETag {etag}. If that is the version you loaded, send If-Match: \
                 {etag}, with the double quotes and without W/ (a proxy that compresses \
                 responses may have added W/ to the ETag you were given); otherwise load it \
                 again and reapply your change.",
            )
            .with_untagged_detail(UNTAGGED_UNMATCHABLE),
            gone: ProblemText::new(
                "https://www.rfc-editor.org/rfc/rfc9110#section-13.1.1",
                "This item no longer exists",
                "This item does not exist: it may have been deleted after you loaded it, so \
                 your change was not applied. Reload it to see its current state. Someone \
                 may have deleted it on purpose; only if it must exist again, create it \
                 anew with a PUT that sends If-None-Match: * instead of If-Match.",
            ),
            exists: ProblemText::new(
                "https://www.rfc-editor.org/rfc/rfc9110#field.if-none-match",
                "This item already exists",
                "Your request asked to act only if this item did not exist, or was at none \
                 of the versions it named, but it exists at ETag {etag}, so nothing was \
                 changed. To change it, load the current version, reapply your change, and \
                 send it with If-Match: {etag}.",
            )
            .with_untagged_detail(UNTAGGED_EXISTS),
            required: ProblemText::new(
                "https://www.rfc-editor.org/rfc/rfc6585#section-3",
                "This request must be conditional",
                "To make sure you do not overwrite someone else's change, this server only \
                 accepts changes that say which version they apply to. Load the item with \
                 GET, and send your request again with an If-Match header that holds the \
                 ETag header of that response (a date in If-Unmodified-Since is not precise \
                 enough). Only a PUT that creates an item which does not exist yet sends \
                 If-None-Match: * instead.",
            ),
            malformed: ProblemText::new(
                "https://www.rfc-editor.org/rfc/rfc9110#status.400",
                "Malformed conditional header",
                "The {field} header is not a valid list of entity-tags. Send the ETag exactly \
                 as the server gave it, including the double quotes (for example \
                 {field}: \"v42\"), separate several tags with commas, or send * alone.",
            ),
            unavailable: ProblemText::new(
                "https://www.rfc-editor.org/rfc/rfc9110#status.503",
                "Storage unavailable",
                "The storage could not complete this request, so nothing was changed. Try \
                 again in a moment.",
            ),
            unconfirmed: ProblemText::new(
                "https://www.rfc-editor.org/rfc/rfc9110#section-9.2.2",
                "Change not confirmed",
                "The storage did not confirm this change, so it may or may not have been \
                 applied. Load the item to see whether it was, and its current ETag, before \
                 you send the change again.",
            ),
            not_found: ProblemText::new(
                "https://www.rfc-editor.org/rfc/rfc9110#status.404",
                "Not Found",
                "There is no item here: it does not exist, or it was deleted. Nothing was \
                 changed.",
            ),
            busy: ProblemText::new(
                "https://www.rfc-editor.org/rfc/rfc5789#section-2.2",
                "This item kept changing",
                "Others changed this item while your change was being saved, so it was \
                 not saved. Nothing was changed. Send your request again.",
            ),
            default_changed: true,
        }
    }
}

/// Every kind of problem. A new kind goes here as well as in
/// [`ProblemTexts::get`]'s match, which the compiler keeps complete.
const ALL_KINDS: [ProblemKind; 10] = [
    ProblemKind::Changed,
    ProblemKind::Unmatchable,
    ProblemKind::Gone,
    ProblemKind::Exists,
    ProblemKind::Required,
    ProblemKind::Malformed,
    ProblemKind::Unavailable,
    ProblemKind::Unconfirmed,
    ProblemKind::NotFound,
    ProblemKind::Busy,
];

impl ProblemTexts {
    /// Replaces the texts of one kind of problem.
    ///
    /// ```
    /// use ifmatch::{ProblemKind, ProblemText, ProblemTexts};
    ///
    /// let texts = ProblemTexts::default().set(ProblemKind::Required, ProblemText::new(
    ///     "https://example.com/problems/unconditional-write",
    ///     "Send If-Match",
    ///     "Reload the page and try again.",
    /// ));
    /// let res = texts.precondition_required();
    /// assert!(res.body().contains("https://example.com/problems/unconditional-write"));
    /// ```
    #[must_use]
    pub fn set(mut self, kind: ProblemKind, text: ProblemText) -> Self {
        if kind == ProblemKind::Changed {
            self.default_changed = false;
        }
        *self.slot(kind) = text;
        self
    }

    /// The texts of one kind of problem.
    #[must_use]
    pub fn get(&self, kind: ProblemKind) -> &ProblemText {
        match kind {
            ProblemKind::Changed => &self.changed,
            ProblemKind::Unmatchable => &self.unmatchable,
            ProblemKind::Gone => &self.gone,
            ProblemKind::Exists => &self.exists,
            ProblemKind::Required => &self.required,
            ProblemKind::Malformed => &self.malformed,
            ProblemKind::Unavailable => &self.unavailable,
            ProblemKind::Unconfirmed => &self.unconfirmed,
            ProblemKind::NotFound => &self.not_found,
            ProblemKind::Busy => &self.busy,
        }
    }

    /// The kind of problem whose `type` member is `type_uri`: the reverse of
    /// [`get`](Self::get), for a client of a service that answers with these
    /// texts, which reads only the body. `None` when no kind has that type,
    /// or more than one does (a service that gave two kinds one type URI
    /// made them the same problem to its clients).
    ///
    /// A client that retries on 412 (with [`Retry`](crate::Retry)) can stop
    /// at a 412 that no new read mends: an `If-Match` the service calls
    /// [`Unmatchable`](ProblemKind::Unmatchable), because something on the
    /// way weakened the tags (`W/"v7"`), fails the same way every time.
    ///
    /// ```
    /// use http::{header::IF_MATCH, HeaderMap, Method};
    /// use ifmatch::{ETag, Failed, ProblemKind, ProblemTexts};
    ///
    /// // The service's 412 for an If-Match a proxy weakened...
    /// let service = ProblemTexts::default();
    /// let mut sent = HeaderMap::new();
    /// sent.insert(IF_MATCH, "W/\"v7\"".parse()?);
    /// let res = service.precondition_failed_for(&Method::PUT, &sent, Some(&ETag::from_version(7)), Failed::IfMatch);
    ///
    /// // ...and the client that reads its body.
    /// let body: serde_json::Value = serde_json::from_str(res.body())?;
    /// let kind = ProblemTexts::default().kind_of(body["type"].as_str().unwrap_or_default());
    /// assert_eq!(kind, Some(ProblemKind::Unmatchable));
    /// let worth_retrying = res.status() == 412 && kind != Some(ProblemKind::Unmatchable);
    /// assert!(!worth_retrying);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn kind_of(&self, type_uri: &str) -> Option<ProblemKind> {
        let mut found = None;
        for kind in ALL_KINDS {
            if self.get(kind).type_uri == type_uri {
                if found.is_some() {
                    return None;
                }
                found = Some(kind);
            }
        }
        found
    }

    fn slot(&mut self, kind: ProblemKind) -> &mut ProblemText {
        match kind {
            ProblemKind::Changed => &mut self.changed,
            ProblemKind::Unmatchable => &mut self.unmatchable,
            ProblemKind::Gone => &mut self.gone,
            ProblemKind::Exists => &mut self.exists,
            ProblemKind::Required => &mut self.required,
            ProblemKind::Malformed => &mut self.malformed,
            ProblemKind::Unavailable => &mut self.unavailable,
            ProblemKind::Unconfirmed => &mut self.unconfirmed,
            ProblemKind::NotFound => &mut self.not_found,
            ProblemKind::Busy => &mut self.busy,
        }
    }

    /// The response for an outcome that stops the request, or `None` for
    /// [`Outcome::Proceed`].
    ///
    /// `current` is the state the request was evaluated against; `headers`
    /// are the headers the 200 response would have carried, from which a 304
    /// copies those [RFC 9110 §15.4.5](https://www.rfc-editor.org/rfc/rfc9110#section-15.4.5) requires (pass an empty map if there
    /// are none).
    ///
    /// For a [`Outcome::PreconditionFailed`], prefer
    /// [`precondition_failed_for`](Self::precondition_failed_for), which
    /// tells an `If-Match` that could never match from a change.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use http::{header, HeaderMap, Method, StatusCode};
    /// use ifmatch::{ETag, Policy, ProblemTexts};
    ///
    /// let (texts, current) = (ProblemTexts::default(), ETag::from_version(2));
    /// let mut request = HeaderMap::new();
    /// request.insert(header::IF_NONE_MATCH, current.to_header_value());
    /// let get = Policy::default().evaluate(&Method::GET, &request, Some(&current), SystemTime::now());
    ///
    /// // What the 200 would carry, which its 304 repeats.
    /// let mut ok = HeaderMap::new();
    /// ok.insert(header::CACHE_CONTROL, "no-cache".parse()?);
    /// let res = texts.respond(get.outcome(), Some(&current), &ok).ok_or("the copy is current")?;
    /// assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    /// assert_eq!(res.headers()[header::CACHE_CONTROL], "no-cache");
    ///
    /// // Without conditions a GET proceeds: no response to send instead.
    /// let plain = Policy::default().evaluate(&Method::GET, &HeaderMap::new(), Some(&current), SystemTime::now());
    /// assert!(texts.respond(plain.outcome(), Some(&current), &ok).is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn respond<V: Versioned + ?Sized>(
        &self,
        outcome: &Outcome,
        current: Option<&V>,
        headers: &HeaderMap,
    ) -> Option<Response<String>> {
        match outcome {
            Outcome::Proceed { .. } => None,
            Outcome::NotModified => Some(not_modified_for(current, headers)),
            Outcome::PreconditionFailed(failed) => Some(self.precondition_failed(current, *failed)),
            Outcome::PreconditionRequired => Some(self.precondition_required()),
        }
    }

    /// 412 Precondition Failed, for a failed precondition.
    #[must_use]
    pub fn precondition_failed<V: Versioned + ?Sized>(
        &self,
        current: Option<&V>,
        failed: Failed,
    ) -> Response<String> {
        let kind = match (current, failed) {
            (None, _) => ProblemKind::Gone,
            (Some(_), Failed::IfNoneMatch) => ProblemKind::Exists,
            (Some(_), _) => ProblemKind::Changed,
        };
        let etag = current.and_then(Versioned::etag);
        self.problem(kind, StatusCode::PRECONDITION_FAILED, etag.as_ref())
    }

    /// The 412 for a failed precondition of a request with these headers:
    /// [`precondition_failed`](Self::precondition_failed), except that an
    /// `If-Match` that could never have matched (malformed, weak tags only,
    /// or any tags against a target without a strong one) gets
    /// [`ProblemKind::Unmatchable`] rather than a claim that the target
    /// changed, and a GET or HEAD is not told that its change was not
    /// applied. Scans `If-Match` once more, without allocating. This is the
    /// 412 [`Gate`](crate::Gate) sends; use it after
    /// [`Policy::evaluate`](crate::Policy::evaluate) in place of
    /// [`respond`](Self::respond) for a [`Outcome::PreconditionFailed`].
    ///
    /// ```
    /// use http::{header::IF_MATCH, HeaderMap, Method};
    /// use ifmatch::{ETag, Failed, ProblemKind, ProblemTexts};
    ///
    /// let texts = ProblemTexts::default();
    /// let current = ETag::from_version(7);
    /// let mut headers = HeaderMap::new();
    /// // The current tag, weakened by a proxy: it can never match.
    /// headers.insert(IF_MATCH, "W/\"v7\"".parse()?);
    /// let res = texts.precondition_failed_for(&Method::PUT, &headers, Some(&current), Failed::IfMatch);
    /// assert_eq!(res.status(), 412);
    /// let title = &texts.get(ProblemKind::Unmatchable).title;
    /// assert!(res.body().contains(title.as_ref()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn precondition_failed_for<H, V>(
        &self,
        method: &Method,
        headers: &H,
        current: Option<&V>,
        failed: Failed,
    ) -> Response<String>
    where
        H: RequestHeaders + ?Sized,
        V: Versioned + ?Sized,
    {
        let Some(current) = current else {
            return self.precondition_failed(current, failed);
        };
        if failed == Failed::IfNoneMatch {
            return self.precondition_failed(Some(current), failed);
        }
        let tag = current.etag();
        // With `matches` true for strong members, `matched: false` means
        // a list of weak tags only.
        let never_matches = || {
            matches!(
                list::scan(headers.field_lines(Field::IfMatch), |weak, _| !weak),
                Scan::Malformed | Scan::Tags { matched: false }
            )
        };
        let unmatchable = failed == Failed::IfMatch
            && match &tag {
                // A target without a strong tag fails every If-Match but `*`
                // (which it satisfies, existing): the client's tags could
                // never have matched, whatever they are.
                None => true,
                Some(tag) if !tag.is_strong() => true,
                // The text names the tag to send: JSON must be able to.
                Some(tag) => nameable(tag) && never_matches(),
            };
        let (kind, read) = if unmatchable {
            (ProblemKind::Unmatchable, false)
        } else {
            (
                ProblemKind::Changed,
                matches!(*method, Method::GET | Method::HEAD),
            )
        };
        self.render_for(
            kind,
            StatusCode::PRECONDITION_FAILED,
            tag.as_ref(),
            "",
            read,
        )
    }

    /// 412 Precondition Failed, for a conditional write that found the
    /// target moved on or gone: the same response a failed precondition
    /// gets, with the now-current entity-tag. A write without a
    /// precondition that found the target gone ([`Conflict::refused`] under
    /// [`Expected::Any`](crate::Expected::Any)) gets 404
    /// ([`ProblemKind::NotFound`]) instead: it had no condition to fail.
    /// One under [`Expected::Any`](crate::Expected::Any) or
    /// [`Expected::Exists`](crate::Expected::Exists) (no precondition,
    /// `If-Match: *`, or conditions the gate evaluated against a target
    /// without a strong tag) that was refused while the target exists gets
    /// the 409 of [`busy`](Self::busy): the store's condition held, and the
    /// write lost a race to another (RFC 9110 §15.5.13: a 412 says "one or
    /// more conditions given in the request header fields evaluated to
    /// false"). The same request may be sent again, to be evaluated anew.
    ///
    /// ```
    /// use http::{header, StatusCode};
    /// use ifmatch::{Conflict, ETag, Expected, ProblemTexts};
    ///
    /// let texts = ProblemTexts::default();
    /// let current = ETag::from_version(2);
    /// // A write under "v1" that found "v2": 412, with the tag to reload.
    /// let stale = Conflict::refused(&Expected::ETag(ETag::from_version(1)), Some(&current));
    /// let res = texts.conflict(&stale);
    /// assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    /// assert_eq!(res.headers()[header::ETAG], "\"v2\"");
    /// // Gone under `If-Match`: the condition is false, 412.
    /// let gone = Conflict::refused(&Expected::ETag(current), None::<&ETag>);
    /// assert_eq!(texts.conflict(&gone).status(), StatusCode::PRECONDITION_FAILED);
    /// // Gone under no condition (opt-in mode): 404.
    /// let gone = Conflict::refused(&Expected::Any, None::<&ETag>);
    /// assert_eq!(texts.conflict(&gone).status(), StatusCode::NOT_FOUND);
    /// // Refused under no condition while the target exists: a lost race, 409.
    /// let raced = Conflict::refused(&Expected::Any, Some(&ETag::from_version(3)));
    /// assert_eq!(texts.conflict(&raced).status(), StatusCode::CONFLICT);
    /// ```
    #[must_use]
    pub fn conflict(&self, conflict: &Conflict) -> Response<String> {
        if conflict.is_gone() && conflict.unconditional() {
            return self.problem(ProblemKind::NotFound, StatusCode::NOT_FOUND, None);
        }
        // No condition failed: the write lost a race (`Conflict::refused`).
        if conflict.lost_race() {
            return self.busy();
        }
        // A refused create says the target existed even when it was gone
        // again by the time the store read it (`Conflict::refused`).
        let kind = if conflict.already_exists() {
            ProblemKind::Exists
        } else if conflict.is_gone() {
            ProblemKind::Gone
        } else {
            ProblemKind::Changed
        };
        self.problem(
            kind,
            StatusCode::PRECONDITION_FAILED,
            conflict.current_etag(),
        )
    }

    /// 428 Precondition Required, for a write that carried no precondition.
    #[must_use]
    pub fn precondition_required(&self) -> Response<String> {
        self.problem(
            ProblemKind::Required,
            StatusCode::PRECONDITION_REQUIRED,
            None,
        )
    }

    /// 400 Bad Request, for a malformed conditional field (see
    /// [`Evaluation::malformed`](crate::Evaluation::malformed)).
    ///
    /// ```
    /// use http::header::IF_MATCH;
    /// use ifmatch::ProblemTexts;
    ///
    /// let res = ProblemTexts::default().malformed(&IF_MATCH);
    /// assert_eq!(res.status(), 400);
    /// assert!(res.body().contains("The If-Match header is not a valid list"));
    /// ```
    #[must_use]
    pub fn malformed(&self, field: &http::HeaderName) -> Response<String> {
        let name = match *field {
            http::header::IF_MATCH => "If-Match",
            http::header::IF_NONE_MATCH => "If-None-Match",
            _ => field.as_str(),
        };
        self.render(ProblemKind::Malformed, StatusCode::BAD_REQUEST, None, name)
    }

    /// 503 Service Unavailable, for a store that failed before anything was
    /// written (the state could not be read, or the write is
    /// [`WriteError::NotWritten`](crate::WriteError::NotWritten)).
    #[must_use]
    pub fn unavailable(&self) -> Response<String> {
        self.problem(
            ProblemKind::Unavailable,
            StatusCode::SERVICE_UNAVAILABLE,
            None,
        )
    }

    /// 503 Service Unavailable, for a write whose outcome is unknown (the
    /// store failed after the write may have reached it): the client is
    /// told to look before it sends the change again, not that nothing
    /// changed.
    #[must_use]
    pub fn unconfirmed(&self) -> Response<String> {
        self.problem(
            ProblemKind::Unconfirmed,
            StatusCode::SERVICE_UNAVAILABLE,
            None,
        )
    }

    /// 409 Conflict, for a change that named no version and lost the race
    /// to other writes every time
    /// ([`ModifyError::Busy`](crate::ModifyError::Busy)), or a write that
    /// lost one no condition decided (see [`conflict`](Self::conflict)). It carries no
    /// `ETag`: the client is to send the same request again, not one
    /// conditioned on a version.
    #[must_use]
    pub fn busy(&self) -> Response<String> {
        self.problem(ProblemKind::Busy, StatusCode::CONFLICT, None)
    }

    /// A problem response of any kind and status, with the current tag.
    ///
    /// For a handler's own answers in the gate's words: here the 404 of a
    /// GET of a missing target, which the gate lets through (with
    /// [`Expected::Absent`](crate::Expected::Absent)) for the handler to
    /// answer, with the text of the 404 the gate gives a PATCH or DELETE.
    ///
    /// ```
    /// use http::StatusCode;
    /// use ifmatch::{ProblemKind, ProblemTexts};
    ///
    /// let texts = ProblemTexts::default();
    /// let res = texts.problem(ProblemKind::NotFound, StatusCode::NOT_FOUND, None);
    /// assert_eq!(res.status(), StatusCode::NOT_FOUND);
    /// let body: serde_json::Value = serde_json::from_str(res.body())?;
    /// assert_eq!(body["status"], 404);
    /// assert_eq!(body["type"], texts.get(ProblemKind::NotFound).type_uri.as_ref());
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    #[must_use]
    pub fn problem(
        &self,
        kind: ProblemKind,
        status: StatusCode,
        etag: Option<&ETag>,
    ) -> Response<String> {
        self.render(kind, status, etag, "")
    }

    fn render(
        &self,
        kind: ProblemKind,
        status: StatusCode,
        etag: Option<&ETag>,
        field: &str,
    ) -> Response<String> {
        self.render_for(kind, status, etag, field, false)
    }

    /// [`render`](Self::render), for a GET or HEAD when `read`: the default
    /// `Changed` text then speaks of no change of the client's.
    fn render_for(
        &self,
        kind: ProblemKind,
        status: StatusCode,
        etag: Option<&ETag>,
        field: &str,
        read: bool,
    ) -> Response<String> {
        // Neither the `etag` member nor the `detail` can show a tag JSON
        // cannot name (see `nameable`), and the default details advise
        // sending the tag in `If-Match`, which a weak tag never satisfies
        // (RFC 9110 §13.1.1: strong comparison).
        let named = etag.filter(|tag| nameable(tag));
        let advisable = named.is_some_and(ETag::is_strong);
        let text = self.get(kind);
        let untagged = match kind {
            ProblemKind::Changed if read && self.default_changed => Some(if advisable {
                READ_CHANGED
            } else {
                READ_UNTAGGED_CHANGED
            }),
            _ if advisable => None,
            _ => text.untagged_detail.as_deref(),
        };
        let shown = etag.map_or_else(|| "(none)".to_owned(), ETag::to_string);
        // A service's own text with `{etag}` cannot show a tag JSON cannot
        // name either: its lossy reading would be another tag.
        let in_detail = match (etag, named) {
            (Some(_), None) => "(see the ETag header)",
            _ => shown.as_str(),
        };
        let detail = fill(untagged.unwrap_or(&text.detail), in_detail, field);
        let body = ProblemBody {
            type_uri: &text.type_uri,
            title: &text.title,
            status: status.as_u16(),
            detail: &detail,
            etag: named.map(|_| shown.as_str()),
        };
        let mut res = body.into_response(status);
        if let Some(tag) = etag {
            res.headers_mut().insert(ETAG, tag.to_header_value());
        }
        res.extensions_mut().insert(kind);
        res
    }
}

/// An `application/problem+json` response
/// ([RFC 9457](https://www.rfc-editor.org/rfc/rfc9457)) with `type`, `title`,
/// `status` and `detail`, for the other errors of a service (404, 415,
/// 422, ...), so that all its problems look alike.
///
/// ```
/// use http::StatusCode;
/// use ifmatch::problem_response;
///
/// let res = problem_response(
///     StatusCode::NOT_FOUND,
///     "about:blank",
///     "Not Found",
///     "There is no item with id 42.",
/// );
/// assert_eq!(res.status(), 404);
/// assert_eq!(res.headers()["content-type"], "application/problem+json");
/// let body: serde_json::Value = serde_json::from_str(res.body())?;
/// assert_eq!(body["detail"], "There is no item with id 42.");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[must_use]
pub fn problem_response(
    status: StatusCode,
    type_uri: &str,
    title: &str,
    detail: &str,
) -> Response<String> {
    ProblemBody {
        type_uri,
        title,
        status: status.as_u16(),
        detail,
        etag: None,
    }
    .into_response(status)
}

/// An RFC 9457 problem object, members in the order the RFC lists them.
struct ProblemBody<'a> {
    type_uri: &'a str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    etag: Option<&'a str>,
}

impl ProblemBody<'_> {
    fn into_response(self, status: StatusCode) -> Response<String> {
        // Serializing a map of strings and a number cannot fail.
        let body = serde_json::to_string(&self).unwrap_or_default();
        let mut res = Response::new(body);
        *res.status_mut() = status;
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        res
    }
}

impl serde::Serialize for ProblemBody<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", self.type_uri)?;
        map.serialize_entry("title", self.title)?;
        map.serialize_entry("status", &self.status)?;
        map.serialize_entry("detail", self.detail)?;
        if let Some(etag) = self.etag {
            map.serialize_entry("etag", etag)?;
        }
        map.end()
    }
}

/// The header fields RFC 9110
/// [§15.4.5](https://www.rfc-editor.org/rfc/rfc9110#section-15.4.5) requires
/// a 304 to repeat from the 200 it stands for, besides `ETag`.
/// [`not_modified`] keeps them, with every other field that does not
/// describe the content.
///
/// ```
/// use http::{header, HeaderMap};
/// use ifmatch::{not_modified, ETag, NOT_MODIFIED_HEADERS};
///
/// let mut ok = HeaderMap::new();
/// ok.insert(header::VARY, "accept-encoding".parse()?);
/// ok.insert(header::CACHE_CONTROL, "no-cache".parse()?);
/// ok.insert(header::CONTENT_TYPE, "text/html".parse()?);
/// let res = not_modified(&ETag::from_version(1), &ok);
/// for name in NOT_MODIFIED_HEADERS {
///     assert_eq!(res.headers().get(name), ok.get(name), "{name}");
/// }
/// assert!(!res.headers().contains_key(header::CONTENT_TYPE));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const NOT_MODIFIED_HEADERS: &[http::HeaderName] =
    &[CACHE_CONTROL, CONTENT_LOCATION, DATE, EXPIRES, VARY];

/// The fields of a 200 that describe its content or its framing, which a
/// 304 has none of: [RFC 9110 §15.4.5](https://www.rfc-editor.org/rfc/rfc9110#section-15.4.5) says a sender SHOULD NOT send
/// representation metadata beyond the fields it lists, and the digests
/// (RFC 9530) and `Content-Disposition` (RFC 6266) describe the content
/// too.
const CONTENT_METADATA: [http::HeaderName; 12] = [
    CONTENT_TYPE,
    CONTENT_LENGTH,
    CONTENT_ENCODING,
    CONTENT_LANGUAGE,
    CONTENT_RANGE,
    CONTENT_DISPOSITION,
    TRANSFER_ENCODING,
    TRAILER,
    http::HeaderName::from_static("content-digest"),
    http::HeaderName::from_static("repr-digest"),
    http::HeaderName::from_static("digest"),
    http::HeaderName::from_static("content-md5"),
];

/// Turns the header fields of a 200 into those of the 304 that stands for
/// it: drops what describes the content ([`CONTENT_METADATA`]) and sets the
/// validators from `current`.
pub(crate) fn into_not_modified_headers<V: Versioned + ?Sized>(
    headers: &mut HeaderMap,
    current: &V,
) {
    for name in CONTENT_METADATA {
        headers.remove(name);
    }
    insert_validators(headers, current);
}

/// 304 Not Modified for `current`, with no body.
///
/// `headers` are the fields the 200 would have carried. The 304 keeps
/// every one of them except those that describe the content or its
/// framing (Content-Type, Content-Length, Content-Encoding,
/// Content-Language, Content-Range, Content-Disposition,
/// Transfer-Encoding, Trailer and the digest fields), which [RFC 9110
/// §15.4.5](https://www.rfc-editor.org/rfc/rfc9110#section-15.4.5) says a 304 should not carry. So it repeats what §15.4.5
/// requires (Cache-Control, Content-Location, Date, Expires, Vary: see
/// [`NOT_MODIFIED_HEADERS`]) and keeps fields that are not about the
/// representation, such as `Set-Cookie`, which user agents process in
/// every response ([RFC 6265 §3](https://www.rfc-editor.org/rfc/rfc6265#section-3)). `ETag` and `Last-Modified` come from
/// `current` (a `Last-Modified` of `headers` stays when `current` has
/// none), never later than now or than the `Date` of `headers`, as
/// [`insert_validators`] writes it; a `Last-Modified` that `httpdate`
/// does not write (before 1970) is left out, and one of `headers` with it.
///
/// ```
/// use http::{header, HeaderMap, StatusCode};
/// use ifmatch::{not_modified, ETag};
///
/// let mut ok_headers = HeaderMap::new();
/// ok_headers.insert(header::CACHE_CONTROL, "max-age=60".parse()?);
/// ok_headers.insert(header::CONTENT_TYPE, "application/json".parse()?);
/// ok_headers.insert(header::SET_COOKIE, "session=abc; HttpOnly".parse()?);
/// let res = not_modified(&ETag::from_version(1), &ok_headers);
/// assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
/// assert_eq!(res.headers()[header::ETAG], "\"v1\"");
/// assert_eq!(res.headers()[header::CACHE_CONTROL], "max-age=60");
/// assert_eq!(res.headers()[header::SET_COOKIE], "session=abc; HttpOnly");
/// assert!(!res.headers().contains_key(header::CONTENT_TYPE));
/// assert!(res.body().is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub fn not_modified<V: Versioned + ?Sized>(current: &V, headers: &HeaderMap) -> Response<String> {
    let mut res = Response::new(String::new());
    *res.status_mut() = StatusCode::NOT_MODIFIED;
    *res.headers_mut() = headers.clone();
    into_not_modified_headers(res.headers_mut(), current);
    res
}

/// [`not_modified`] for the state a request was evaluated against, absent
/// included: the evaluator does not answer 304 for an absent target, but
/// the builders take any outcome with any state.
pub(crate) fn not_modified_for<V: Versioned + ?Sized>(
    current: Option<&V>,
    headers: &HeaderMap,
) -> Response<String> {
    match current {
        Some(current) => not_modified(current, headers),
        None => not_modified(&crate::Validators::default(), headers),
    }
}

/// Sets `ETag` and `Last-Modified` from `current`'s validators, as every
/// 2xx and 304 response for the target should carry them, with one
/// exception: a successful PUT may carry them only if the target now holds
/// exactly the bytes the request sent ([RFC 9110 §9.3.4](https://www.rfc-editor.org/rfc/rfc9110#section-9.3.4): "MUST NOT send a
/// validator field … unless the request's representation data was saved
/// without any transformation"), so that a client can pair the new tag with
/// the copy it holds. A service that adds a field, reformats JSON or
/// normalizes numbers before it stores a PUT leaves the validators out of
/// its answer, and the client reads them with a GET. A
/// `Last-Modified` later than the response's origination is replaced by
/// it ([RFC 9110 §8.8.2.1](https://www.rfc-editor.org/rfc/rfc9110#section-8.8.2.1)): by the current time, or by the `Date` already
/// in `headers` when that is earlier; one before 1970, which `httpdate` does not write, is left
/// out, and a `Last-Modified` already in `headers` removed, as it would
/// describe another state; it is written as an IMF-fixdate, in whole
/// seconds.
///
/// Validators let a cache ask, but do not make it ask: a 200 with
/// `Last-Modified` and no `Cache-Control` may be reused unasked for a
/// while (heuristic freshness, [RFC 9111 §4.2.2](https://www.rfc-editor.org/rfc/rfc9111#section-4.2.2); browsers take a tenth
/// of the time since the last change), so a person who reloads after a
/// 412 can get the same stale copy again. For representations that
/// clients edit, send `Cache-Control: no-cache` as well, in the 200 and
/// in [`Gate::not_modified_headers`](crate::Gate::not_modified_headers).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use http::HeaderMap;
/// use ifmatch::{insert_validators, ETag, Validators};
///
/// let mut headers = HeaderMap::new();
/// let current = Validators::new(ETag::from_version(4))
///     .with_last_modified(UNIX_EPOCH + Duration::from_secs(784_111_777));
/// insert_validators(&mut headers, &current);
/// assert_eq!(headers["etag"], "\"v4\"");
/// assert_eq!(headers["last-modified"], "Sun, 06 Nov 1994 08:49:37 GMT");
/// ```
pub fn insert_validators<V: Versioned + ?Sized>(headers: &mut HeaderMap, current: &V) {
    if let Some(tag) = current.etag() {
        headers.insert(ETAG, tag.to_header_value());
    }
    // RFC 9110 §8.8.2.1: "If the last modification time is derived from
    // implementation-specific metadata that evaluates to some time in the
    // future, according to the origin server's clock, then the origin server
    // MUST replace that value with the message origination date." (A
    // database clock can run ahead of this server's.)
    // The same section: "MUST NOT generate a Last-Modified date that is
    // later than the server's time of message origination (Date)", so a
    // Date the caller already set (to a time before now) bounds it too.
    if let Some(modified) = current.last_modified() {
        let now = SystemTime::now();
        let origination = headers
            .get(DATE)
            .and_then(|v| date::parse_time(v.as_bytes()))
            .map_or(now, |sent| sent.min(now));
        match date::to_header_value(modified.min(origination)) {
            Some(value) => headers.insert(LAST_MODIFIED, value),
            None => headers.remove(LAST_MODIFIED),
        };
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::{Expected, Validators};

    fn json(res: &Response<String>) -> serde_json::Value {
        serde_json::from_str(res.body()).unwrap()
    }

    #[test]
    fn every_problem_response_carries_its_kind_for_outer_layers() {
        let kind = |res: &Response<String>| res.extensions().get::<ProblemKind>().copied();
        // Customized texts too: the kind is the situation, not the text.
        for texts in [
            ProblemTexts::default(),
            ProblemTexts::default().set(
                ProblemKind::Changed,
                ProblemText::new("about:blank", "Stale", "Reload {etag}."),
            ),
        ] {
            for k in ALL_KINDS {
                let res = texts.problem(k, StatusCode::IM_A_TEAPOT, None);
                assert_eq!(kind(&res), Some(k));
            }
            let cur = ETag::from_version(3);
            let failed =
                |current: Option<&ETag>, failed| kind(&texts.precondition_failed(current, failed));
            assert_eq!(
                failed(Some(&cur), Failed::IfMatch),
                Some(ProblemKind::Changed)
            );
            assert_eq!(failed(None, Failed::IfMatch), Some(ProblemKind::Gone));
            assert_eq!(
                failed(Some(&cur), Failed::IfNoneMatch),
                Some(ProblemKind::Exists)
            );
            assert_eq!(
                kind(&texts.conflict(&Conflict::moved(&cur))),
                Some(ProblemKind::Changed)
            );
            assert_eq!(
                kind(&texts.conflict(&Conflict::gone())),
                Some(ProblemKind::Gone)
            );
            assert_eq!(
                kind(&texts.precondition_required()),
                Some(ProblemKind::Required)
            );
            assert_eq!(
                kind(&texts.malformed(&http::header::IF_MATCH)),
                Some(ProblemKind::Malformed)
            );
            assert_eq!(kind(&texts.unavailable()), Some(ProblemKind::Unavailable));
            assert_eq!(kind(&texts.unconfirmed()), Some(ProblemKind::Unconfirmed));
            assert_eq!(kind(&texts.busy()), Some(ProblemKind::Busy));
        }
        // A service's own problem, and a 304, are none of the crate's kinds.
        let own = problem_response(StatusCode::NOT_FOUND, "about:blank", "Not Found", "None.");
        assert_eq!(kind(&own), None);
        assert_eq!(
            kind(&not_modified(&ETag::from_version(1), &HeaderMap::new())),
            None
        );
    }

    #[test]
    fn a_services_own_problem_has_the_rfc_9457_members_and_no_etag() {
        let res = problem_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "https://example.com/problems/json-only",
            "Only JSON",
            "Send Content-Type: application/json.",
        );
        assert_eq!(res.status(), 415);
        assert_eq!(res.headers()[CONTENT_TYPE], PROBLEM_JSON);
        assert!(!res.headers().contains_key(ETAG));
        let body = json(&res);
        let members: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
        assert_eq!(members, ["detail", "status", "title", "type"]);
        assert_eq!(body["type"], "https://example.com/problems/json-only");
        assert_eq!(body["title"], "Only JSON");
        assert_eq!(body["status"], 415);
        assert_eq!(body["detail"], "Send Content-Type: application/json.");
    }

    #[test]
    fn every_problem_response_states_its_own_status() {
        // RFC 9457 §3.1.2: "status" is the status code of the response.
        let texts = ProblemTexts::default();
        let cur = ETag::from_version(5);
        let none = None::<&ETag>;
        let responses = [
            texts.precondition_failed(Some(&cur), Failed::IfMatch),
            texts.precondition_failed(none, Failed::IfMatch),
            texts.precondition_failed(Some(&cur), Failed::IfNoneMatch),
            texts.precondition_failed_for(
                &Method::PUT,
                &HeaderMap::new(),
                Some(&cur),
                Failed::IfMatch,
            ),
            texts.conflict(&Conflict::moved(&cur)),
            texts.conflict(&Conflict::gone()),
            texts.precondition_required(),
            texts.malformed(&http::header::IF_MATCH),
            texts.unavailable(),
            texts.unconfirmed(),
            texts.busy(),
        ];
        for res in responses {
            assert_eq!(
                json(&res)["status"],
                res.status().as_u16(),
                "{}",
                res.body()
            );
            assert!(res.status().is_client_error() || res.status().is_server_error());
        }
    }

    #[test]
    fn every_default_problem_type_is_an_absolute_uri() {
        // RFC 9457 §3.1.1: a relative "type" would resolve against the
        // request's URI, which differs per resource; clients compare it.
        let texts = ProblemTexts::default();
        for kind in ALL_KINDS {
            let uri: http::Uri = texts.get(kind).type_uri.parse().unwrap();
            assert_eq!(uri.scheme_str(), Some("https"), "{kind:?}");
            assert!(uri.host().is_some(), "{kind:?}");
        }
    }

    #[test]
    fn every_default_text_reads_cleanly_with_and_without_a_tag() {
        let tags = [
            None,
            Some(ETag::from_version(3)),
            Some(ETag::from_version(3).into_weak()),
            Some(ETag::parse(b"\"caf\xe9\"").unwrap()),
        ];
        let texts = ProblemTexts::default();
        for kind in ALL_KINDS {
            for (tag, read) in tags.iter().flat_map(|t| [(t, false), (t, true)]) {
                let res = texts.render_for(
                    kind,
                    StatusCode::PRECONDITION_FAILED,
                    tag.as_ref(),
                    "If-Match",
                    read,
                );
                let body = json(&res);
                let detail = body["detail"].as_str().unwrap();
                // Lost line continuations show as runs of spaces; a
                // placeholder left unfilled shows as braces.
                assert!(!detail.contains("  "), "{kind:?} {tag:?}: {detail:?}");
                assert!(!detail.contains('{'), "{kind:?} {tag:?}: {detail:?}");
                assert!(!detail.contains("(none)"), "{kind:?} {tag:?}: {detail:?}");
                // A tag is advised for If-Match only when If-Match can match
                // it. (The 400's text shows the syntax with an example tag.)
                let advising = kind != ProblemKind::Malformed;
                if advising && tag.as_ref().is_none_or(|t| !t.is_strong() || !nameable(t)) {
                    assert!(
                        !detail.contains("If-Match: \""),
                        "{kind:?} {tag:?}: {detail:?}"
                    );
                    assert!(
                        !detail.contains("If-Match: W/"),
                        "{kind:?} {tag:?}: {detail:?}"
                    );
                }
            }
        }
        // A service's own Unmatchable text is used whatever the tag.
        let custom = ProblemTexts::default().set(
            ProblemKind::Unmatchable,
            ProblemText::new("about:blank", "No", "Ours."),
        );
        let res = custom.problem(
            ProblemKind::Unmatchable,
            StatusCode::PRECONDITION_FAILED,
            None,
        );
        assert_eq!(json(&res)["detail"], "Ours.");
    }

    #[test]
    fn a_custom_text_never_shows_a_tag_json_cannot_name() {
        let texts = ProblemTexts::default().set(
            ProblemKind::Changed,
            ProblemText::new("about:blank", "Changed", "Send If-Match: {etag}."),
        );
        let latin1 = ETag::parse(b"\"caf\xe9\"").unwrap();
        let res = texts.precondition_failed(Some(&latin1), Failed::IfMatch);
        assert_eq!(
            json(&res)["detail"],
            "Send If-Match: (see the ETag header)."
        );
        assert_eq!(res.headers()[ETAG].as_bytes(), b"\"caf\xe9\"");
    }

    #[test]
    fn a_last_modified_no_date_can_express_removes_a_stale_one() {
        let mut headers = HeaderMap::new();
        headers.insert(
            LAST_MODIFIED,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        let before_1970 = Validators::new(ETag::from_version(9))
            .with_last_modified(UNIX_EPOCH - Duration::from_secs(1));
        insert_validators(&mut headers, &before_1970);
        assert_eq!(headers[ETAG], "\"v9\"");
        assert!(!headers.contains_key(LAST_MODIFIED));
    }

    #[test]
    fn a_last_modified_is_never_later_than_the_date_the_response_carries() {
        // RFC 9110 §8.8.2.1: no Last-Modified later than the message's Date.
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        let changed_after_date = Validators::new(ETag::from_version(2))
            .with_last_modified(UNIX_EPOCH + Duration::from_secs(784_111_777 + 3_600));
        let mut headers = HeaderMap::new();
        headers.insert(DATE, HeaderValue::from_static(date));
        insert_validators(&mut headers, &changed_after_date);
        assert_eq!(headers[LAST_MODIFIED], date);

        // The 304 keeps the Date of the 200 it stands for, and the bound.
        let res = not_modified(&changed_after_date, &headers);
        assert_eq!(res.headers()[DATE], date);
        assert_eq!(res.headers()[LAST_MODIFIED], date);
        let texts = ProblemTexts::default();
        let res = texts.respond(&Outcome::NotModified, Some(&changed_after_date), &headers);
        assert_eq!(
            res.map(|r| r.headers()[LAST_MODIFIED].clone()),
            Some(HeaderValue::from_static(date))
        );

        // An earlier Last-Modified is sent as it is, and a Date that is no
        // HTTP-date bounds nothing (the clock still does).
        let earlier = Validators::new(ETag::from_version(1))
            .with_last_modified(UNIX_EPOCH + Duration::from_secs(784_111_777 - 60));
        insert_validators(&mut headers, &earlier);
        assert_eq!(headers[LAST_MODIFIED], "Sun, 06 Nov 1994 08:48:37 GMT");
        headers.insert(DATE, HeaderValue::from_static("yesterday"));
        insert_validators(&mut headers, &changed_after_date);
        assert_eq!(headers[LAST_MODIFIED], "Sun, 06 Nov 1994 09:49:37 GMT");
    }

    #[test]
    fn a_last_modified_in_the_future_is_sent_as_the_time_of_the_response() {
        let tomorrow = SystemTime::now() + Duration::from_secs(86_400);
        let ahead = Validators::new(ETag::from_version(3)).with_last_modified(tomorrow);
        // A Date the caller set later than now does not let it through.
        let mut headers = HeaderMap::new();
        headers.insert(DATE, date::to_header_value(tomorrow).unwrap());
        insert_validators(&mut headers, &ahead);
        let sent = date::parse_time(headers[LAST_MODIFIED].as_bytes()).unwrap();
        assert!(
            sent <= SystemTime::now(),
            "Last-Modified {sent:?} is in the future"
        );
        assert!(sent + Duration::from_secs(3_600) > SystemTime::now());
    }

    #[test]
    fn a_conflict_without_a_precondition_on_a_gone_target_is_404() {
        let texts = ProblemTexts::default();
        let current = ETag::from_version(4);
        let none = None::<&ETag>;
        // No precondition, target gone (a DELETE that lost a race): 404.
        let res = texts.conflict(&Conflict::refused(&Expected::Any, none));
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            json(&res)["title"],
            texts.get(ProblemKind::NotFound).title.as_ref()
        );
        // Under a condition, the condition failed: 412.
        for expected in [Expected::Exists, Expected::ETag(current.clone())] {
            let res = texts.conflict(&Conflict::refused(&expected, none));
            assert_eq!(
                res.status(),
                StatusCode::PRECONDITION_FAILED,
                "{expected:?}"
            );
            assert_eq!(
                json(&res)["title"],
                texts.get(ProblemKind::Gone).title.as_ref()
            );
        }
        let res = texts.conflict(&Conflict::refused(&Expected::Absent, Some(&current)));
        assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
        assert_eq!(
            json(&res)["title"],
            texts.get(ProblemKind::Exists).title.as_ref()
        );
        // Refused under no condition or `If-Match: *` while the target
        // exists: no condition was false (a 412 would say one was), the
        // write lost a race. 409, send it again; no tag to condition on.
        for expected in [Expected::Any, Expected::Exists] {
            let res = texts.conflict(&Conflict::refused(&expected, Some(&current)));
            assert_eq!(res.status(), StatusCode::CONFLICT, "{expected:?}");
            let kind = res.extensions().get::<ProblemKind>().copied();
            assert_eq!(kind, Some(ProblemKind::Busy), "{expected:?}");
            assert!(!res.headers().contains_key(ETAG), "{expected:?}");
        }
        // A create refused by a target that was deleted again before the
        // store read it: it existed, which is what the 412 says, not
        // "gone, create it with If-None-Match: *" (what the request did).
        let res = texts.conflict(&Conflict::refused(&Expected::Absent, none));
        assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
        assert!(!res.headers().contains_key(ETAG));
        let body = json(&res);
        assert_eq!(body["title"], texts.get(ProblemKind::Exists).title.as_ref());
        assert!(
            !body["detail"]
                .as_str()
                .unwrap()
                .contains("If-None-Match: *"),
            "{body}"
        );
    }

    #[test]
    fn precondition_failed_names_the_current_tag_and_how_to_recover() {
        let current = ETag::from_version(8);
        let res = ProblemTexts::default().precondition_failed(Some(&current), Failed::IfMatch);
        let body = json(&res);
        assert_eq!(res.status(), 412);
        assert_eq!(res.headers()[ETAG], "\"v8\"");
        assert_eq!(body["status"], 412);
        assert_eq!(body["etag"], "\"v8\"");
        assert_eq!(
            body["detail"],
            "This item was changed after you loaded it (by someone else, or by an earlier \
             request of yours), so this change was not applied. Load the current version \
             (ETag \"v8\"), reapply your change if it is still needed, and send it again with \
             If-Match: \"v8\"."
        );
        assert!(body["type"].as_str().unwrap().starts_with("https://"));
        assert!(body["title"].is_string());
    }

    #[test]
    fn a_client_finds_the_kind_of_a_problem_from_its_type() {
        let texts = ProblemTexts::default();
        for kind in ALL_KINDS {
            assert_eq!(texts.kind_of(&texts.get(kind).type_uri), Some(kind));
        }
        assert_eq!(texts.kind_of("about:blank"), None);
        assert_eq!(texts.kind_of(""), None);
        // Compared exactly, as RFC 9457 §3.1.1 clients compare them.
        let changed = texts.get(ProblemKind::Changed).type_uri.to_string();
        assert_eq!(texts.kind_of(&changed.to_uppercase()), None);
        assert_eq!(texts.kind_of(&format!("{changed}/")), None);

        // A replaced type is found under its new URI only; two kinds given
        // one URI are no longer told apart.
        let own = "https://example.com/problems/stale";
        let texts = texts
            .set(
                ProblemKind::Changed,
                ProblemText::new(own, "Stale", "Reload."),
            )
            .set(ProblemKind::Gone, ProblemText::new(own, "Gone", "Reload."));
        assert_eq!(texts.kind_of(own), None);
        assert_eq!(texts.kind_of(&changed), None);
        let required = texts.get(ProblemKind::Required).type_uri.to_string();
        assert_eq!(texts.kind_of(&required), Some(ProblemKind::Required));
        let texts = texts.set(
            ProblemKind::Gone,
            ProblemText::new("https://example.com/problems/gone", "Gone", "Reload."),
        );
        assert_eq!(texts.kind_of(own), Some(ProblemKind::Changed));
    }

    #[test]
    fn each_default_problem_type_has_one_title() {
        // RFC 9457 §3.1.1: "Consumers MUST use the "type" URI ... as the
        // problem type's primary identifier"; §3.1.3: the title "SHOULD NOT
        // change from occurrence to occurrence of the problem, except for
        // localization". Kinds a client must tell apart (reload and retry,
        // recreate, stop) need distinct types, not one type with three titles.
        let texts = ProblemTexts::default();
        for a in ALL_KINDS {
            for b in ALL_KINDS {
                let (ta, tb) = (texts.get(a), texts.get(b));
                if ta.type_uri == tb.type_uri {
                    assert_eq!(
                        ta.title, tb.title,
                        "{a:?} and {b:?} share the type {} under different titles",
                        ta.type_uri
                    );
                }
            }
        }
    }

    #[test]
    fn a_busy_change_is_a_409_that_names_no_version() {
        // The client resends the same request; it is not to condition it on
        // a version, so no ETag is offered.
        let res = ProblemTexts::default().busy();
        assert_eq!(res.status(), StatusCode::CONFLICT);
        assert_eq!(res.headers()[CONTENT_TYPE], PROBLEM_JSON);
        assert!(!res.headers().contains_key(ETAG));
        let body = json(&res);
        assert_eq!(body["status"], 409);
        assert_eq!(body["title"], "This item kept changing");
        assert!(body.get("etag").is_none());
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("Send your request again")
        );
    }

    #[test]
    fn the_etag_member_is_only_there_when_json_can_name_the_tag() {
        // UTF-8 in obs-text: the JSON string is the same bytes.
        let utf8 = ETag::parse("\"caf\u{e9}\"".as_bytes()).unwrap();
        let res = ProblemTexts::default().precondition_failed(Some(&utf8), Failed::IfMatch);
        assert_eq!(
            json(&res)["etag"].as_str().unwrap().as_bytes(),
            utf8.as_bytes()
        );
        // Latin-1 obs-text: no JSON string has these bytes; the header does.
        let latin1 = ETag::parse(b"\"caf\xe9\"").unwrap();
        let res = ProblemTexts::default().precondition_failed(Some(&latin1), Failed::IfMatch);
        assert_eq!(res.headers()[ETAG].as_bytes(), b"\"caf\xe9\"");
        assert!(json(&res).get("etag").is_none());
        // Nor does the detail name it (as its Latin-1 reading, another tag).
        let detail = json(&res)["detail"].as_str().unwrap().to_owned();
        assert!(!detail.contains("caf"), "{detail}");
        assert!(!detail.contains("If-Match:"), "{detail}");
    }

    #[test]
    fn a_tag_that_looks_like_a_placeholder_is_shown_as_it_is() {
        // Braces are etagc, so "{field}" and "{etag}" are valid tags.
        for raw in ["{field}", "{etag}", "{", "a{etag"] {
            let current = ETag::strong(raw).unwrap();
            let res = ProblemTexts::default().precondition_failed(Some(&current), Failed::IfMatch);
            let detail = json(&res)["detail"].as_str().unwrap().to_owned();
            assert!(
                detail.contains(&format!("(ETag \"{raw}\")"))
                    && detail.ends_with(&format!("If-Match: \"{raw}\".")),
                "{raw}: {detail}"
            );
        }
        let texts = ProblemTexts::default().set(
            ProblemKind::Malformed,
            ProblemText::new("about:blank", "Bad", "{field} is bad {x} {"),
        );
        let body = json(&texts.malformed(&http::header::IF_MATCH));
        assert_eq!(body["detail"], "If-Match is bad {x} {");
    }

    #[test]
    fn a_missing_target_gets_the_gone_text_without_etag() {
        let res = ProblemTexts::default().precondition_failed(None::<&ETag>, Failed::IfMatch);
        let body = json(&res);
        assert!(!res.headers().contains_key(ETAG));
        assert!(body.get("etag").is_none());
        assert!(body["detail"].as_str().unwrap().contains("does not exist"));
    }

    #[test]
    fn if_none_match_failure_on_a_write_says_it_exists() {
        let current = ETag::from_version(2);
        let res = ProblemTexts::default().precondition_failed(Some(&current), Failed::IfNoneMatch);
        let body = json(&res);
        assert!(body["title"].as_str().unwrap().contains("already exists"));
        // Also right for a list of tags, one of which is current.
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("did not exist, or was at none of the versions it named"));
        assert!(detail.contains("it exists at ETag \"v2\""), "{detail}");
    }

    #[test]
    fn required_explains_how_to_get_and_send_the_etag() {
        let res = ProblemTexts::default().precondition_required();
        let body = json(&res);
        assert_eq!(res.status(), 428);
        assert_eq!(res.headers()[CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(body["status"], 428);
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("If-Match"));
        assert!(detail.contains("GET"));
        assert!(detail.contains("If-None-Match: *"));
    }

    #[test]
    fn conflicts_map_to_the_same_412() {
        let texts = ProblemTexts::default();
        let current = ETag::from_version(9);
        let from_conflict = texts.conflict(&Conflict::moved(&current));
        let from_precondition = texts.precondition_failed(Some(&current), Failed::IfMatch);
        assert_eq!(from_conflict.status(), from_precondition.status());
        assert_eq!(from_conflict.headers(), from_precondition.headers());
        assert_eq!(from_conflict.body(), from_precondition.body());
        let gone = texts.conflict(&Conflict::gone());
        assert_eq!(
            gone.body(),
            texts
                .precondition_failed(None::<&ETag>, Failed::IfMatch)
                .body()
        );
        // A create (`If-None-Match: *`) that lost the race to another
        // create gets what the gate answers once the target exists.
        let lost_race = texts.conflict(&Conflict::refused(&Expected::Absent, Some(&current)));
        let exists = texts.precondition_failed(Some(&current), Failed::IfNoneMatch);
        assert_eq!(lost_race.headers(), exists.headers());
        assert_eq!(lost_race.body(), exists.body());
        assert!(
            json(&lost_race)["title"]
                .as_str()
                .unwrap()
                .contains("already exists")
        );
        let stale = Conflict::refused(&Expected::ETag(ETag::from_version(8)), Some(&current));
        assert_eq!(texts.conflict(&stale).body(), from_precondition.body());
    }

    #[test]
    fn a_target_without_a_tag_gets_advice_a_client_can_follow() {
        let untagged = Validators::modified_at(UNIX_EPOCH + Duration::from_secs(784_111_777));
        let texts = ProblemTexts::default();
        for res in [
            texts.conflict(&Conflict::moved(&untagged)),
            texts.precondition_failed(Some(&untagged), Failed::IfUnmodifiedSince),
            texts.precondition_failed(Some(&untagged), Failed::IfNoneMatch),
        ] {
            let body = json(&res);
            let detail = body["detail"].as_str().unwrap();
            assert!(!detail.contains("(none)"), "{detail}");
            assert!(
                detail.to_lowercase().contains("load the current version"),
                "{detail}"
            );
            assert!(body.get("etag").is_none());
            assert!(!res.headers().contains_key(ETAG));
        }
        // A replaced text is used with or without a tag.
        let custom = ProblemText::new("about:blank", "Changed", "Reload (now {etag}).");
        let texts = texts.set(ProblemKind::Changed, custom);
        let res = texts.conflict(&Conflict::moved(&untagged));
        assert_eq!(json(&res)["detail"], "Reload (now (none)).");
    }

    #[test]
    fn a_replaced_exists_text_is_used_without_a_strong_tag() {
        // The default `Exists` text has an untagged variant; a service's own
        // text replaces both, as for `Changed` and `Unmatchable`.
        let texts = ProblemTexts::default().set(
            ProblemKind::Exists,
            ProblemText::new(
                "urn:example:exists",
                "Exists",
                "Already there (now {etag}).",
            ),
        );
        let untagged = Validators::modified_at(UNIX_EPOCH + Duration::from_secs(784_111_777));
        let weak = ETag::from_version(3).into_weak();
        for (res, detail) in [
            (
                texts.precondition_failed(Some(&untagged), Failed::IfNoneMatch),
                "Already there (now (none)).",
            ),
            (
                texts.precondition_failed(Some(&weak), Failed::IfNoneMatch),
                "Already there (now W/\"v3\").",
            ),
            (
                texts.conflict(&Conflict::refused(&Expected::Absent, Some(&untagged))),
                "Already there (now (none)).",
            ),
        ] {
            let body = json(&res);
            assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
            assert_eq!(body["type"], "urn:example:exists");
            assert_eq!(body["title"], "Exists");
            assert_eq!(body["detail"], detail);
        }
    }

    #[test]
    fn a_text_s_untagged_detail_is_used_when_no_strong_tag_can_be_named() {
        // The defaults keep theirs in the field, where a service can read
        // them.
        let defaults = ProblemTexts::default();
        for kind in [
            ProblemKind::Changed,
            ProblemKind::Exists,
            ProblemKind::Unmatchable,
        ] {
            assert!(defaults.get(kind).untagged_detail.is_some(), "{kind:?}");
        }
        let texts = defaults
            .set(
                ProblemKind::Exists,
                ProblemText::new("urn:example:exists", "Exists", "It is at {etag}.")
                    .with_untagged_detail("It exists."),
            )
            .set(
                ProblemKind::Unmatchable,
                ProblemText::new("urn:example:never", "Never", "Send If-Match: {etag}.")
                    .with_untagged_detail("Reload it; it cannot be changed under If-Match."),
            );
        let strong = ETag::from_version(3);
        let weak = strong.clone().into_weak();
        let latin1 = ETag::parse(b"\"caf\xe9\"").unwrap();
        let dated = Validators::modified_at(UNIX_EPOCH + Duration::from_secs(784_111_777));
        let detail = |res: Response<String>| json(&res)["detail"].as_str().unwrap().to_owned();
        let exists =
            |v: &dyn Versioned| detail(texts.precondition_failed(Some(v), Failed::IfNoneMatch));
        assert_eq!(exists(&strong), "It is at \"v3\".");
        assert_eq!(exists(&weak), "It exists.");
        assert_eq!(exists(&latin1), "It exists.");
        assert_eq!(exists(&dated), "It exists.");
        let never = |tag: Option<&ETag>| {
            detail(texts.problem(
                ProblemKind::Unmatchable,
                StatusCode::PRECONDITION_FAILED,
                tag,
            ))
        };
        assert_eq!(never(Some(&strong)), "Send If-Match: \"v3\".");
        assert_eq!(
            never(Some(&weak)),
            "Reload it; it cannot be changed under If-Match."
        );
        assert_eq!(
            never(None),
            "Reload it; it cannot be changed under If-Match."
        );
    }

    #[test]
    fn malformed_names_the_field_as_the_rfc_spells_it() {
        for (field, name) in [
            (http::header::IF_MATCH, "If-Match"),
            (http::header::IF_NONE_MATCH, "If-None-Match"),
        ] {
            let res = ProblemTexts::default().malformed(&field);
            let body = json(&res);
            assert_eq!(res.status(), StatusCode::BAD_REQUEST);
            assert_eq!(res.headers()[CONTENT_TYPE], PROBLEM_JSON);
            assert_eq!(body["status"], 400);
            assert_eq!(
                body["detail"],
                format!(
                    "The {name} header is not a valid list of entity-tags. Send the ETag \
                     exactly as the server gave it, including the double quotes (for example \
                     {name}: \"v42\"), separate several tags with commas, or send * alone."
                )
            );
        }
    }

    #[test]
    fn texts_and_type_can_be_replaced() {
        let texts = ProblemTexts::default().set(
            ProblemKind::Changed,
            ProblemText::new("urn:example:stale", "Stale", "Now at {etag}."),
        );
        let body = json(&texts.precondition_failed(Some(&ETag::from_version(1)), Failed::IfMatch));
        assert_eq!(body["type"], "urn:example:stale");
        assert_eq!(body["title"], "Stale");
        assert_eq!(body["detail"], "Now at \"v1\".");
    }

    #[test]
    fn not_modified_carries_the_section_15_4_5_fields_and_no_body() {
        let mut ok = HeaderMap::new();
        for (name, value) in [
            (CACHE_CONTROL, "max-age=60"),
            (CONTENT_LOCATION, "/items/1"),
            (DATE, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (EXPIRES, "Sun, 06 Nov 1994 08:50:37 GMT"),
            (VARY, "accept"),
            (CONTENT_TYPE, "application/json"),
            (http::header::CONTENT_LENGTH, "12"),
        ] {
            ok.append(name, HeaderValue::from_static(value));
        }
        ok.append(VARY, HeaderValue::from_static("accept-encoding"));
        let current = Validators::new(ETag::from_version(1))
            .with_last_modified(UNIX_EPOCH + Duration::from_secs(784_111_777));
        let res = not_modified(&current, &ok);
        assert_eq!(res.status(), 304);
        assert!(res.body().is_empty());
        let h = res.headers();
        assert_eq!(h[ETAG], "\"v1\"");
        assert_eq!(h[LAST_MODIFIED], "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(h[CACHE_CONTROL], "max-age=60");
        assert_eq!(h[CONTENT_LOCATION], "/items/1");
        assert_eq!(h[DATE], "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(h[EXPIRES], "Sun, 06 Nov 1994 08:50:37 GMT");
        assert_eq!(h.get_all(VARY).iter().count(), 2);
        assert!(!h.contains_key(CONTENT_TYPE));
        assert!(!h.contains_key(http::header::CONTENT_LENGTH));
    }

    #[test]
    fn respond_maps_each_outcome() {
        let texts = ProblemTexts::default();
        let cur = ETag::from_version(1);
        let empty = HeaderMap::new();
        let status = |o: Outcome| texts.respond(&o, Some(&cur), &empty).map(|r| r.status());
        assert_eq!(
            status(Outcome::Proceed {
                expected: crate::Expected::Any,
                ignore_range: false
            }),
            None
        );
        assert_eq!(status(Outcome::NotModified), Some(StatusCode::NOT_MODIFIED));
        assert_eq!(
            status(Outcome::PreconditionFailed(Failed::IfMatch)),
            Some(StatusCode::PRECONDITION_FAILED)
        );
        assert_eq!(
            status(Outcome::PreconditionRequired),
            Some(StatusCode::PRECONDITION_REQUIRED)
        );
    }
}
