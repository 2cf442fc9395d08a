//! Compile-time checks of the auto traits and error bounds the public types
//! promise (API guidelines C-SEND-SYNC, C-GOOD-ERR): losing one is a
//! breaking change, and nothing else would notice it, as auto traits leak
//! through private fields.
//!
//! Each check is a generic function whose bounds are the promise: the test
//! fails by not compiling. The middleware's layers, services, futures and
//! body are checked generically, for every choice of their parts, so that
//! they stay `Send`, `Sync` and `Unpin` when their parts are and ask no
//! more of them (a future that needs its request body `Sync` to be `Send`
//! would fail here, not in a user's `tokio::spawn`).

use std::panic::{RefUnwindSafe, UnwindSafe};

use ifmatch::{
    Conflict, Decision, ETag, ETagHasher, ETagList, Evaluation, Expected, Failed, Gate, HashError,
    InvalidETag, MemoryStore, Mode, ModifyError, Outcome, Policy, Precondition, ProblemKind,
    ProblemText, ProblemTexts, RawHeaders, Retry, Stored, Validators, WriteError, Written,
};

fn send_sync<T: Send + Sync + Unpin + 'static>() {}

fn unwind_safe<T: UnwindSafe + RefUnwindSafe>() {}

fn error<T: std::error::Error + Send + Sync + 'static>() {}

#[test]
fn the_core_types_are_send_sync_and_unpin() {
    send_sync::<ETag>();
    send_sync::<ETagList>();
    send_sync::<ETagHasher>();
    send_sync::<Validators>();
    send_sync::<Expected>();
    send_sync::<Conflict>();
    send_sync::<Policy>();
    send_sync::<Mode>();
    send_sync::<Failed>();
    send_sync::<Outcome>();
    send_sync::<Evaluation>();
    send_sync::<Gate>();
    send_sync::<Decision>();
    send_sync::<Precondition>();
    send_sync::<ProblemKind>();
    send_sync::<ProblemText>();
    send_sync::<ProblemTexts>();
    send_sync::<Retry>();
    send_sync::<InvalidETag>();
    send_sync::<HashError>();
    send_sync::<RawHeaders<'static, std::vec::IntoIter<(&'static [u8], &'static [u8])>>>();
}

/// The store and its results are `Send` and `Sync` when what they hold is:
/// a `MemoryStore` behind an `Arc` in axum state must be `Send + Sync`.
#[test]
fn the_store_types_are_send_sync_when_their_parts_are() {
    fn check<K, V, E, R>()
    where
        K: Send + Sync + Unpin + 'static,
        V: Send + Sync + Unpin + 'static,
        E: Send + Sync + Unpin + 'static,
        R: Send + Sync + Unpin + 'static,
    {
        send_sync::<MemoryStore<K, V>>();
        send_sync::<Stored<V>>();
        send_sync::<Written<V>>();
        send_sync::<WriteError<E>>();
        send_sync::<ModifyError<R, E>>();
    }
    check::<String, Vec<u8>, std::io::Error, &'static str>();
}

/// What a service holds for its lifetime and may use inside `catch_unwind`.
#[test]
fn the_configuration_types_are_unwind_safe() {
    unwind_safe::<ETag>();
    unwind_safe::<Policy>();
    unwind_safe::<ProblemTexts>();
    unwind_safe::<Gate>();
    unwind_safe::<Retry>();
    unwind_safe::<MemoryStore<String, String>>();
}

/// Every error type can be boxed into `Box<dyn Error + Send + Sync>` (and
/// so into `anyhow::Error`, `tower::BoxError`).
#[test]
fn the_error_types_are_send_sync_static_errors() {
    fn check<E: std::error::Error + Send + Sync + 'static>() {
        error::<WriteError<E>>();
        error::<ModifyError<&'static str, E>>();
    }
    error::<InvalidETag>();
    error::<HashError>();
    error::<Conflict>();
    check::<std::io::Error>();
    check::<std::convert::Infallible>();
}

#[cfg(feature = "middleware")]
mod middleware {
    use http::{Request, Response};
    use http_body::Body;
    use ifmatch::ETag;
    use ifmatch::middleware::{
        ETagFuture, ETagLayer, ETagService, ForwardResolved, PreconditionFuture, PreconditionLayer,
        PreconditionService, Resolve, ResolveError, Resolved, ResponseBody, StoreUnavailable,
    };
    use tower_service::Service;

    use super::error;

    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    fn unpin<T: Unpin>() {}

    /// Each trait asked of the parts alone: a service that needs its inner
    /// service `Sync` to be `Send` fails here.
    #[test]
    fn the_layers_and_services_are_send_sync_and_unpin_when_their_parts_are() {
        fn sends<S: Send, R: Send>() {
            send::<ETagLayer>();
            send::<PreconditionLayer<R>>();
            send::<ETagService<S>>();
            send::<PreconditionService<S, R>>();
            send::<ForwardResolved<R>>();
            send::<Resolved<ETag>>();
        }
        fn syncs<S: Sync, R: Sync>() {
            sync::<ETagLayer>();
            sync::<PreconditionLayer<R>>();
            sync::<ETagService<S>>();
            sync::<PreconditionService<S, R>>();
            sync::<ForwardResolved<R>>();
            sync::<Resolved<ETag>>();
        }
        fn unpins<S: Unpin, R: Unpin>() {
            unpin::<ETagLayer>();
            unpin::<PreconditionLayer<R>>();
            unpin::<ETagService<S>>();
            unpin::<PreconditionService<S, R>>();
            unpin::<ForwardResolved<R>>();
            unpin::<Resolved<ETag>>();
        }
        sends::<(), ()>();
        syncs::<(), ()>();
        unpins::<(), ()>();
    }

    /// `tokio::spawn` and hyper need the response future and body `Send`:
    /// they are whenever the inner service's future, the resolver's
    /// future, the request body and the response body are, and need none of
    /// them `Sync`.
    #[test]
    fn the_futures_and_body_are_send_when_their_parts_are() {
        fn precondition<S, R, ReqBody>()
        where
            S: Service<Request<ReqBody>> + Send,
            S::Future: Send,
            R: Resolve,
            R::Future: Send,
            ReqBody: Send,
        {
            send::<PreconditionFuture<S, R, ReqBody>>();
        }
        fn etag<F: Send, B: Body + Send>() {
            send::<ETagFuture<F, B>>();
        }
        fn body<B>()
        where
            B: Body + Send,
            B::Error: Send,
        {
            send::<ResponseBody<B>>();
        }
        precondition::<ServiceOf<String>, Resolver, String>();
        etag::<std::future::Ready<()>, String>();
        body::<String>();
    }

    /// The same for `Sync`, for a future or body shared by reference.
    #[test]
    fn the_futures_and_body_are_sync_when_their_parts_are() {
        fn precondition<S, R, ReqBody>()
        where
            S: Service<Request<ReqBody>> + Sync,
            S::Future: Sync,
            R: Resolve,
            R::Future: Sync,
            ReqBody: Sync,
        {
            sync::<PreconditionFuture<S, R, ReqBody>>();
        }
        fn etag<F: Sync, B: Body + Sync>() {
            sync::<ETagFuture<F, B>>();
        }
        fn body<B>()
        where
            B: Body + Sync,
            B::Error: Sync,
        {
            sync::<ResponseBody<B>>();
        }
        precondition::<ServiceOf<String>, Resolver, String>();
        etag::<std::future::Ready<()>, String>();
        body::<String>();
    }

    /// A future or body over `Unpin` parts can be polled without pinning it
    /// first (`Pin::new(&mut fut)`, `body.frame().await` on a `&mut`).
    #[test]
    fn the_futures_and_body_are_unpin_when_their_parts_are() {
        fn precondition<S, R, ReqBody>()
        where
            S: Service<Request<ReqBody>>,
            S::Future: Unpin,
            R: Resolve,
            R::Future: Unpin,
        {
            unpin::<PreconditionFuture<S, R, ReqBody>>();
        }
        fn etag<F: Unpin, B: Body>() {
            unpin::<ETagFuture<F, B>>();
        }
        fn body<B: Body + Unpin>() {
            unpin::<ResponseBody<B>>();
        }
        precondition::<ServiceOf<String>, Resolver, String>();
        etag::<std::future::Ready<()>, String>();
        body::<String>();
    }

    #[test]
    fn the_error_types_are_send_sync_static_errors() {
        error::<ResolveError>();
        error::<StoreUnavailable>();
    }

    /// A resolver and an inner service to instantiate the generic checks
    /// with, so that their bounds are checked for real types too.
    type Resolver = fn(
        &http::request::Parts,
    ) -> std::future::Ready<Result<Option<ETag>, std::convert::Infallible>>;

    #[derive(Clone)]
    struct ServiceOf<B>(std::marker::PhantomData<fn() -> B>);

    impl<B> Service<Request<B>> for ServiceOf<B> {
        type Response = Response<String>;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<Response<String>, std::convert::Infallible>>;

        fn poll_ready(
            &mut self,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Self::Error>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn call(&mut self, _req: Request<B>) -> Self::Future {
            std::future::ready(Ok(Response::new(String::new())))
        }
    }
}
