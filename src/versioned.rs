//! What a resource exposes to preconditions.

use std::rc::Rc;
use std::sync::Arc;
use std::time::SystemTime;

use crate::etag::ETag;

/// The validators of a resource's current representation: what the
/// [evaluator](crate::Policy::evaluate) compares the request's conditions
/// against ([RFC 9110 §8.8](https://www.rfc-editor.org/rfc/rfc9110#section-8.8)).
///
/// Implement it for your resource type; each kind of resource is one line:
///
/// ```
/// use ifmatch::{ETag, Versioned};
///
/// // Version-derived: the store keeps a version number.
/// struct Row { version: u64, body: String }
/// impl Versioned for Row {
///     fn etag(&self) -> Option<ETag> { Some(ETag::from_version(self.version)) }
/// }
///
/// // Content-derived: the tag is the hash of the bytes sent.
/// struct Page { html: Vec<u8> }
/// impl Versioned for Page {
///     fn etag(&self) -> Option<ETag> { Some(ETag::from_content(&self.html)) }
/// }
/// ```
///
/// or use a ready-made carrier: an [`ETag`] itself, [`Validators`], or a
/// [`Stored`](crate::Stored) from a [`MemoryStore`](crate::MemoryStore).
///
/// The evaluator calls each method at most once per evaluation.
pub trait Versioned {
    /// The entity-tag of the current representation, if it has one.
    ///
    /// Return a strong tag: `If-Match` and `If-Range` compare strongly, so a
    /// weak current tag never satisfies them.
    fn etag(&self) -> Option<ETag>;

    /// When the current representation was last modified, if known
    /// (the `Last-Modified` field, [RFC 9110 §8.8.2](https://www.rfc-editor.org/rfc/rfc9110#section-8.8.2)).
    ///
    /// Without it, `If-Modified-Since` and `If-Unmodified-Since` are ignored
    /// (§13.1.3, §13.1.4).
    fn last_modified(&self) -> Option<SystemTime> {
        None
    }
}

/// An entity-tag is its own validator.
impl Versioned for ETag {
    fn etag(&self) -> Option<ETag> {
        Some(self.clone())
    }
}

/// A plain pair of validators, for resources whose type you do not own.
///
/// ```
/// use std::time::SystemTime;
/// use ifmatch::{ETag, Validators, Versioned};
///
/// let v = Validators::new(ETag::from_version(7)).with_last_modified(SystemTime::UNIX_EPOCH);
/// assert_eq!(v.etag(), Some(ETag::from_version(7)));
/// assert_eq!(v.last_modified(), Some(SystemTime::UNIX_EPOCH));
///
/// // A resource known only by its modification time (a file).
/// let file = Validators::modified_at(SystemTime::UNIX_EPOCH);
/// assert_eq!(file.etag(), None);
/// // A copy of any other value's validators, without the value.
/// assert_eq!(Validators::of(&ETag::from_version(7)), Validators::new(ETag::from_version(7)));
/// // A resource that exists with no validators at all (a collection a
/// // POST creates in, see `Gate::check`): `If-Match: *` holds on it.
/// let collection = Validators::default();
/// assert_eq!((collection.etag(), collection.last_modified()), (None, None));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Validators {
    etag: Option<ETag>,
    last_modified: Option<SystemTime>,
}

impl Validators {
    /// Validators with an entity-tag and no modification time.
    #[must_use]
    pub fn new(etag: ETag) -> Self {
        Self {
            etag: Some(etag),
            last_modified: None,
        }
    }

    /// Validators with only a modification time.
    #[must_use]
    pub fn modified_at(time: SystemTime) -> Self {
        Self {
            etag: None,
            last_modified: Some(time),
        }
    }

    /// Copies the validators of any versioned value.
    #[must_use]
    pub fn of<V: Versioned + ?Sized>(value: &V) -> Self {
        Self {
            etag: value.etag(),
            last_modified: value.last_modified(),
        }
    }

    pub(crate) fn etag_ref(&self) -> Option<&ETag> {
        self.etag.as_ref()
    }

    /// Sets the modification time.
    #[must_use]
    pub fn with_last_modified(mut self, time: SystemTime) -> Self {
        self.last_modified = Some(time);
        self
    }
}

impl Versioned for Validators {
    fn etag(&self) -> Option<ETag> {
        self.etag.clone()
    }

    fn last_modified(&self) -> Option<SystemTime> {
        self.last_modified
    }
}

macro_rules! forward {
    ($($ty:ty),*) => {$(
        impl<T: Versioned + ?Sized> Versioned for $ty {
            fn etag(&self) -> Option<ETag> {
                (**self).etag()
            }
            fn last_modified(&self) -> Option<SystemTime> {
                (**self).last_modified()
            }
        }
    )*};
}

forward!(&T, &mut T, Box<T>, Rc<T>, Arc<T>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carriers_forward_both_validators() {
        let v = Validators::new(ETag::from_version(1)).with_last_modified(SystemTime::UNIX_EPOCH);
        let boxed: Box<dyn Versioned> = Box::new(v.clone());
        assert_eq!(boxed.etag(), Some(ETag::from_version(1)));
        assert_eq!(
            Arc::new(v.clone()).last_modified(),
            Some(SystemTime::UNIX_EPOCH)
        );
        assert_eq!(Validators::of(&&v), v);
        assert_eq!(ETag::from_version(2).last_modified(), None);
        assert_eq!(Validators::modified_at(SystemTime::UNIX_EPOCH).etag(), None);
    }
}
