//! What must hold of any evaluation, whatever the headers: shared by the
//! property tests (tests/properties.rs) and the fuzz target
//! (fuzz/fuzz_targets/header_parsers.rs), so both check the same thing.

use http::{Method, header};
use ifmatch::{Evaluation, Expected, Failed, Outcome, Policy, Validators, Versioned};

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Checks `eval`, the evaluation of a `method` request against `current`
/// under `policy`, with any headers at all.
pub fn evaluation_invariants(
    policy: &Policy,
    method: &Method,
    current: Option<&Validators>,
    eval: &Evaluation,
) -> Result<(), String> {
    let get_or_head = *method == Method::GET || *method == Method::HEAD;
    let proceed = |expected| Outcome::Proceed {
        expected,
        ignore_range: false,
    };
    // §13.2.1: OPTIONS ignores preconditions.
    if *method == Method::OPTIONS {
        ensure!(
            *eval.outcome() == proceed(Expected::Any),
            "OPTIONS must proceed unconditionally, got {eval:?}"
        );
    }
    // §13.2.1: without a target, anything but a PUT is a 404, which takes
    // precedence over preconditions.
    if current.is_none() && *method != Method::PUT && *method != Method::OPTIONS {
        ensure!(
            *eval.outcome() == proceed(Expected::Absent),
            "{method} on an absent target must proceed bound to absence, got {eval:?}"
        );
    }
    match eval.outcome() {
        Outcome::NotModified => ensure!(get_or_head, "304 for {method}"),
        Outcome::PreconditionFailed(Failed::IfNoneMatch) => {
            ensure!(!get_or_head, "412 for If-None-Match on {method}")
        }
        Outcome::PreconditionRequired => ensure!(
            policy.requires_precondition(method),
            "428 for {method}, which the policy does not require a precondition for"
        ),
        Outcome::Proceed {
            expected,
            ignore_range,
        } => {
            ensure!(
                !ignore_range || *method == Method::GET,
                "ignore_range for {method}"
            );
            if let Expected::ETag(tag) = expected {
                ensure!(
                    Some(tag.clone()) == current.and_then(|c| c.etag()),
                    "Expected::ETag({tag}) is not the current tag"
                );
            }
        }
        _ => {}
    }
    let malformed = eval.malformed();
    ensure!(
        malformed.is_none()
            || malformed == Some(header::IF_MATCH)
            || malformed == Some(header::IF_NONE_MATCH),
        "malformed() named {malformed:?}"
    );
    Ok(())
}
