//! Where the evaluator reads request header fields from.

use std::marker::PhantomData;

use http::header::{
    HeaderMap, HeaderName, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE,
    IF_UNMODIFIED_SINCE, RANGE,
};

/// The request header fields the [evaluator](crate::Policy::evaluate) (and
/// so [`Gate`](crate::Gate)) reads: the five conditional fields of
/// [RFC 9110 §13.1](https://www.rfc-editor.org/rfc/rfc9110#section-13.1), and
/// `Range` ([§14.2](https://www.rfc-editor.org/rfc/rfc9110#section-14.2)),
/// without which `If-Range` is not evaluated. No other field changes an
/// evaluation.
///
/// For a framework whose headers cannot lend their `(name, value)` bytes
/// to [`RawHeaders`] (Rocket's `HeaderMap::iter` yields values that borrow
/// from a temporary), look these fields up one by one and collect what
/// they hold:
///
/// ```
/// use std::collections::HashMap;
/// use std::time::SystemTime;
/// use http::Method;
/// use ifmatch::{ETag, Outcome, Policy, RawHeaders, PRECONDITION_FIELDS};
///
/// // A framework's own header store, looked up by name, every line kept.
/// let mut own: HashMap<&str, Vec<String>> = HashMap::new();
/// own.insert("if-match", vec![r#""v1""#.into(), r#""v2""#.into()]);
/// own.insert("x-request-id", vec!["42".into()]);
///
/// let pairs: Vec<(&[u8], &[u8])> = PRECONDITION_FIELDS
///     .iter()
///     .flat_map(|name| {
///         own.get(name.as_str())
///             .into_iter()
///             .flatten()
///             .map(move |value| (name.as_str().as_bytes(), value.as_bytes()))
///     })
///     .collect();
/// let eval = Policy::default().evaluate(
///     &Method::PUT,
///     &RawHeaders::new(pairs.iter().copied()),
///     Some(&ETag::from_version(2)),
///     SystemTime::now(),
/// );
/// assert!(matches!(eval.outcome(), Outcome::Proceed { .. }));
/// ```
pub const PRECONDITION_FIELDS: [HeaderName; 6] = [
    IF_MATCH,
    IF_NONE_MATCH,
    IF_MODIFIED_SINCE,
    IF_UNMODIFIED_SINCE,
    IF_RANGE,
    RANGE,
];

/// The request fields the evaluator reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    IfMatch,
    IfNoneMatch,
    IfModifiedSince,
    IfUnmodifiedSince,
    IfRange,
    Range,
}

impl Field {
    /// Its name in [`PRECONDITION_FIELDS`], which lists the fields in the
    /// order of this enum's variants.
    pub(crate) fn header_name(self) -> &'static HeaderName {
        &PRECONDITION_FIELDS[self as usize]
    }

    fn lowercase(self) -> &'static [u8] {
        match self {
            Self::IfMatch => b"if-match",
            Self::IfNoneMatch => b"if-none-match",
            Self::IfModifiedSince => b"if-modified-since",
            Self::IfUnmodifiedSince => b"if-unmodified-since",
            Self::IfRange => b"if-range",
            Self::Range => b"range",
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// Request headers the [evaluator](crate::Policy::evaluate) can read
/// without copying them.
///
/// Implemented for `http` 1.x's [`HeaderMap`], [`http::request::Parts`] and
/// [`http::Request`], and for [`RawHeaders`], which takes header names and
/// values as bytes (for actix-web 4 and other users of `http` 0.2).
///
/// This trait is sealed: the evaluator's correctness depends on how fields
/// are looked up (case-insensitive names, every line of a repeated field).
///
/// Code generic over it serves every framework at once:
///
/// ```
/// use std::time::SystemTime;
/// use http::{header::IF_MATCH, Method, Request};
/// use ifmatch::{ETag, Outcome, Policy, RawHeaders, RequestHeaders};
///
/// /// Whether a PUT with these headers may replace `current`.
/// fn may_put<H: RequestHeaders + ?Sized>(headers: &H, current: &ETag) -> bool {
///     let eval = Policy::default().evaluate(&Method::PUT, headers, Some(current), SystemTime::now());
///     matches!(eval.outcome(), Outcome::Proceed { .. })
/// }
///
/// let current = ETag::from_version(1);
/// let req = Request::put("/doc").header(IF_MATCH, "\"v1\"").body(())?;
/// assert!(may_put(&req, &current));
/// assert!(may_put(req.headers(), &current));
/// let (parts, ()) = req.into_parts();
/// assert!(may_put(&parts, &current));
/// // actix-web 4's headers, as byte pairs: a stale tag.
/// let pairs: [(&[u8], &[u8]); 1] = [(b"If-Match", b"\"v0\"")];
/// assert!(!may_put(&RawHeaders::new(pairs.iter().copied()), &current));
/// # Ok::<(), http::Error>(())
/// ```
pub trait RequestHeaders: sealed::Sealed {
    /// Every line of `field`, in order.
    #[doc(hidden)]
    fn field_lines(&self, field: Field) -> impl Iterator<Item = &[u8]>;
}

impl sealed::Sealed for HeaderMap {}
impl RequestHeaders for HeaderMap {
    fn field_lines(&self, field: Field) -> impl Iterator<Item = &[u8]> {
        self.get_all(field.header_name())
            .into_iter()
            .map(|v| v.as_bytes())
    }
}

impl sealed::Sealed for http::request::Parts {}
impl RequestHeaders for http::request::Parts {
    fn field_lines(&self, field: Field) -> impl Iterator<Item = &[u8]> {
        self.headers.field_lines(field)
    }
}

impl<B> sealed::Sealed for http::Request<B> {}
impl<B> RequestHeaders for http::Request<B> {
    fn field_lines(&self, field: Field) -> impl Iterator<Item = &[u8]> {
        self.headers().field_lines(field)
    }
}

/// Request headers as `(name, value)` byte pairs, for frameworks that do
/// not use `http` 1.x (actix-web 4 uses `http` 0.2).
///
/// Names are compared case-insensitively; a field sent on several lines is
/// read as one list, in order. The iterator is cloned once per field the
/// evaluator looks at, so pass something cheap to clone: a slice iterator,
/// or a `map` over a header iterator that is `Clone`. `RawHeaders` itself
/// copies and allocates nothing. actix-web 4's header iterator is not
/// `Clone`: collect its `(name, value)` pairs into a `Vec<(&[u8], &[u8])>`
/// first (one small allocation; the header bytes are borrowed, not
/// copied), as the `actix_items` example does.
///
/// ```
/// use std::time::SystemTime;
/// use http::Method;
/// use ifmatch::{ETag, Outcome, Policy, RawHeaders};
///
/// let pairs: [(&[u8], &[u8]); 2] = [
///     (b"Content-Type", b"application/json"),
///     (b"IF-MATCH", b"\"v1\""),
/// ];
/// let headers = RawHeaders::new(pairs.iter().copied());
/// let current = ETag::from_version(1);
/// let eval = Policy::default().evaluate(&Method::PUT, &headers, Some(&current), SystemTime::now());
/// assert!(matches!(eval.outcome(), Outcome::Proceed { .. }));
/// ```
///
/// With actix-web 4, a PUT handler that checks its preconditions with a
/// [`Gate`](crate::Gate) before it looks at the body, then writes under
/// what the gate checked (the README's actix-web section lists what a
/// whole service adds: HEAD, 413 and broken bodies, percent-decoded ids):
///
/// ```
/// use std::time::SystemTime;
///
/// use actix_web::http::StatusCode;
/// use actix_web::{web, App, HttpRequest, HttpResponse};
/// use ifmatch::{ConditionalStore, Decision, Gate, MemoryStore, RawHeaders, WriteError};
///
/// type Docs = web::Data<MemoryStore<String, String>>;
///
/// /// A response of the gate's (`http` 1.x), in actix-web's types.
/// fn to_actix(res: http::Response<String>) -> HttpResponse {
///     let status = StatusCode::from_u16(res.status().as_u16())
///         .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
///     let mut out = HttpResponse::build(status);
///     for (name, value) in res.headers() {
///         out.append_header((name.as_str(), value.as_bytes()));
///     }
///     out.body(res.into_body())
/// }
///
/// async fn put_doc(
///     req: HttpRequest,
///     docs: Docs,
///     gate: web::Data<Gate>,
///     body: web::Bytes,
/// ) -> HttpResponse {
///     // actix-web 4's method is `http` 0.2's.
///     let Ok(method) = http::Method::from_bytes(req.method().as_str().as_bytes()) else {
///         return HttpResponse::BadRequest().finish();
///     };
///     // Its header iterator is not `Clone`: borrow the pairs into a `Vec`.
///     let pairs: Vec<(&[u8], &[u8])> = req
///         .headers()
///         .iter()
///         .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes()))
///         .collect();
///     // One key for the check and the write.
///     let key = req.match_info().query("id").to_owned();
///     let current = docs.validators(&key);
///     let headers = RawHeaders::new(pairs.iter().copied());
///     let pre = match gate.check(&method, &headers, current.as_ref(), SystemTime::now()) {
///         Decision::Proceed(pre) => pre,
///         // 412, 428, ...: whatever the body, as RFC 9110 §13.2.1 asks
///         // (the README says how to answer an unreadable body likewise).
///         Decision::Respond(res) => return to_actix(res),
///     };
///     let Ok(text) = String::from_utf8(body.to_vec()) else {
///         return HttpResponse::BadRequest().finish();
///     };
///     // Compare-and-swap under what the gate checked: a write that landed
///     // since gets the same 412.
///     match docs.store(&key, pre.expected(), text).await {
///         Ok(written) => {
///             // 201 for a create (RFC 9110 §9.3.4), and stored as sent, so
///             // the answer may carry the tag (also §9.3.4).
///             let status = if written.created() { StatusCode::CREATED } else { StatusCode::OK };
///             HttpResponse::build(status)
///                 .insert_header(("etag", written.etag().as_bytes()))
///                 .finish()
///         }
///         Err(WriteError::Conflict(conflict)) => to_actix(gate.conflict(&conflict)),
///         Err(WriteError::NotWritten(_)) => to_actix(gate.unavailable()),
///         // The write may have landed before the store failed.
///         Err(_) => to_actix(gate.unconfirmed()),
///     }
/// }
///
/// let app = App::new()
///     .app_data(Docs::new(MemoryStore::new()))
///     .app_data(web::Data::new(Gate::default()))
///     .route("/docs/{id}", web::put().to(put_doc));
/// # actix_web::rt::System::new().block_on(async {
/// #     use actix_web::test::{call_service, init_service, TestRequest};
/// #     let app = init_service(app).await;
/// #     let put = |cond: (&'static str, &'static str)| {
/// #         TestRequest::put().uri("/docs/a").insert_header(cond).set_payload("text").to_request()
/// #     };
/// #     assert_eq!(call_service(&app, put(("if-match", "\"v1\""))).await.status(), 412);
/// #     let created = call_service(&app, put(("if-none-match", "*"))).await;
/// #     assert_eq!(created.status(), 201);
/// #     assert_eq!(created.headers().get("etag").map(|tag| tag.as_bytes()), Some(&b"\"v1\""[..]));
/// #     assert_eq!(call_service(&app, put(("if-none-match", "*"))).await.status(), 412);
/// #     assert_eq!(call_service(&app, put(("if-match", "\"v1\""))).await.status(), 200);
/// #     assert_eq!(call_service(&app, put(("if-match", "\"v1\""))).await.status(), 412);
/// #     let unconditional = TestRequest::put().uri("/docs/a").set_payload("x").to_request();
/// #     assert_eq!(call_service(&app, unconditional).await.status(), 428);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct RawHeaders<'a, I> {
    pairs: I,
    // Ties the borrowed bytes to the wrapper, so lines handed out while the
    // wrapper is borrowed are known to live long enough.
    _bytes: PhantomData<&'a [u8]>,
}

impl<'a, I> RawHeaders<'a, I>
where
    I: Iterator<Item = (&'a [u8], &'a [u8])> + Clone,
{
    /// Wraps an iterator of `(name, value)` pairs.
    #[must_use]
    pub fn new(pairs: I) -> Self {
        Self {
            pairs,
            _bytes: PhantomData,
        }
    }
}

impl<'a, I> sealed::Sealed for RawHeaders<'a, I> where
    I: Iterator<Item = (&'a [u8], &'a [u8])> + Clone
{
}
impl<'a, I> RequestHeaders for RawHeaders<'a, I>
where
    I: Iterator<Item = (&'a [u8], &'a [u8])> + Clone,
{
    fn field_lines(&self, field: Field) -> impl Iterator<Item = &[u8]> {
        let name = field.lowercase();
        self.pairs
            .clone()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| trim_ows(v))
    }
}

/// Strips leading and trailing OWS, which `HeaderValue` never holds but raw
/// values may ([RFC 9110 §5.5](https://www.rfc-editor.org/rfc/rfc9110#section-5.5): it is not part of the field value).
pub(crate) fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let Some(start) = start else {
        return &v[..0];
    };
    let end = v
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |e| e + 1);
    &v[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_field_is_published_under_its_own_name() {
        // The variants in order; the last one indexes the list's end, so a
        // variant added without its name fails to index.
        let all = [
            Field::IfMatch,
            Field::IfNoneMatch,
            Field::IfModifiedSince,
            Field::IfUnmodifiedSince,
            Field::IfRange,
            Field::Range,
        ];
        for field in all {
            assert_eq!(field.header_name().as_str().as_bytes(), field.lowercase());
        }
        assert_eq!(PRECONDITION_FIELDS.len(), all.len());
        assert_eq!(Field::Range as usize, PRECONDITION_FIELDS.len() - 1);
    }

    #[test]
    fn raw_names_match_case_insensitively_and_keep_every_line() {
        let pairs: Vec<(&[u8], &[u8])> = vec![
            (b"If-Match", b"\"a\""),
            (b"x", b"y"),
            (b"if-match", b"  \"b\"\t"),
        ];
        let h = RawHeaders::new(pairs.iter().copied());
        let lines: Vec<&[u8]> = h.field_lines(Field::IfMatch).collect();
        assert_eq!(lines, [&b"\"a\""[..], b"\"b\""]);
        assert_eq!(h.field_lines(Field::IfRange).count(), 0);
    }

    #[test]
    fn header_map_keeps_every_line() {
        let mut map = HeaderMap::new();
        map.append(IF_NONE_MATCH, "\"a\"".parse().unwrap());
        map.append(IF_NONE_MATCH, "\"b\"".parse().unwrap());
        assert_eq!(map.field_lines(Field::IfNoneMatch).count(), 2);
    }

    #[test]
    fn trims_only_ows() {
        assert_eq!(trim_ows(b"  a b \t"), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
        assert_eq!(trim_ows(b""), b"");
    }
}
