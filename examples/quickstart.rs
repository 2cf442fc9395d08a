//! A framework-free tour of `ifmatch`: an ETag, a 304, a stale write refused
//! with its 412 problem body, a write without a precondition refused with
//! 428, and the retry helper recovering from the 412.
//!
//! Run with `cargo run --example quickstart`.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use ifmatch::{Expected, MemoryStore, Outcome, Policy, ProblemTexts, Retry};

/// The whole "service": one document, GET and PUT, in a plain function of
/// an `http::Request`.
struct Service {
    store: MemoryStore<&'static str, String>,
    policy: Policy,
    texts: ProblemTexts,
}

impl Service {
    fn handle(&self, req: &Request<String>) -> Response<String> {
        let current = self.store.get("doc");
        let eval = self.policy.evaluate(
            req.method(),
            req.headers(),
            current.as_ref(),
            SystemTime::now(),
        );
        let expected = match eval.into_outcome() {
            Outcome::Proceed { expected, .. } => expected,
            // 304, 412 or 428: answered before the handler touches anything.
            stop => {
                return self
                    .texts
                    .respond(&stop, current.as_ref(), &HeaderMap::new())
                    .unwrap_or_else(|| status(StatusCode::INTERNAL_SERVER_ERROR));
            }
        };
        match *req.method() {
            Method::GET => match current {
                Some(doc) => ok(doc.etag(), doc.value().clone()),
                None => status(StatusCode::NOT_FOUND),
            },
            // The write is a compare-and-swap on what was checked.
            Method::PUT => match self.store.put("doc", &expected, req.body().clone()) {
                // RFC 9110 §9.3.4: 201 when the PUT created the document
                // (in strict mode a create carries If-None-Match: *).
                Ok(doc) if expected == Expected::Absent => {
                    let mut res = ok(doc.etag(), doc.value().clone());
                    *res.status_mut() = StatusCode::CREATED;
                    res
                }
                Ok(doc) => ok(doc.etag(), doc.value().clone()),
                Err(conflict) => self.texts.conflict(&conflict),
            },
            _ => status(StatusCode::METHOD_NOT_ALLOWED),
        }
    }
}

fn ok(etag: &ifmatch::ETag, body: String) -> Response<String> {
    let mut res = Response::new(body);
    res.headers_mut()
        .insert(header::ETAG, etag.to_header_value());
    res
}

fn status(code: StatusCode) -> Response<String> {
    let mut res = Response::new(String::new());
    *res.status_mut() = code;
    res
}

fn request(method: Method, headers: &[(header::HeaderName, &str)], body: &str) -> Request<String> {
    let mut req = Request::new(body.to_owned());
    *req.method_mut() = method;
    for (name, value) in headers {
        if let Ok(value) = value.parse() {
            req.headers_mut().insert(name.clone(), value);
        }
    }
    req
}

fn show(who: &str, what: &str, res: &Response<String>) {
    let etag = res
        .headers()
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    println!("{who:<6} {what:<42} -> {} (ETag {etag})", res.status());
    if !res.body().is_empty() && res.status().is_client_error() {
        println!("       {}", res.body());
    }
}

fn etag_of(res: &Response<String>) -> String {
    res.headers()
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn main() {
    let service = Service {
        store: MemoryStore::new(),
        policy: Policy::default(),
        texts: ProblemTexts::default(),
    };

    let res = service.handle(&request(
        Method::PUT,
        &[(header::IF_NONE_MATCH, "*")],
        "price: 10",
    ));
    show("setup", "PUT If-None-Match: * (create)", &res);

    // Alice and Bob both load the document.
    let alice = service.handle(&request(Method::GET, &[], ""));
    show("alice", "GET", &alice);
    let alice_tag = etag_of(&alice);
    let bob = service.handle(&request(Method::GET, &[], ""));
    show("bob", "GET", &bob);

    // Alice revalidates her copy: nothing changed, so 304 and no body.
    let res = service.handle(&request(
        Method::GET,
        &[(header::IF_NONE_MATCH, &alice_tag)],
        "",
    ));
    show("alice", "GET If-None-Match (revalidate)", &res);

    // Bob saves first.
    let res = service.handle(&request(
        Method::PUT,
        &[(header::IF_MATCH, &etag_of(&bob))],
        "price: 12",
    ));
    show("bob", "PUT If-Match (price: 12)", &res);

    // Alice saves her stale copy: refused, Bob's change is not erased.
    let res = service.handle(&request(
        Method::PUT,
        &[(header::IF_MATCH, &alice_tag)],
        "price: 10, stock: 3",
    ));
    show("alice", "PUT If-Match <stale tag>", &res);

    // Saving without a precondition is refused too (strict mode).
    let res = service.handle(&request(Method::PUT, &[], "price: 10, stock: 3"));
    show("alice", "PUT without If-Match", &res);

    // Alice's client recovers: read, reapply her change, write, retried on
    // 412 with jittered backoff. Her first attempt still uses the stale tag.
    let mut stale = Some(alice_tag);
    let retry = Retry::new().backoff(Duration::from_millis(5), Duration::from_millis(50));
    let result = retry.run_blocking(|attempt| {
        let read = service.handle(&request(Method::GET, &[], ""));
        let tag = stale.take().unwrap_or_else(|| etag_of(&read));
        let changed = format!("{}, stock: 3", read.body());
        let res = service.handle(&request(Method::PUT, &[(header::IF_MATCH, &tag)], &changed));
        show(
            "alice",
            &format!("retry attempt {attempt}: PUT If-Match"),
            &res,
        );
        // A 412 is a conflict (retried); any other failure is returned.
        if res.status().is_success() {
            Ok(res)
        } else {
            Err(res.status())
        }
    });
    match result {
        Ok(res) => println!("final document: {:?}", res.body()),
        Err(status) => println!("gave up with {status}"),
    }
}
