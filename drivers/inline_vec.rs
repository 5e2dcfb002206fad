// SPDX-License-Identifier: GPL-2.0

//! A vector whose first element is kept in place.
//!
//! Some lists of the core almost always hold one element: the attached devices of a group (most
//! groups have one device) and the domains of an IOAS (one per IOMMU instance). Upstream links
//! such elements into intrusive lists or stores them in an xarray's head, which allocates nothing
//! for the first one. [`InlineVec`] does the same for a list of values: its first element costs
//! no allocation; the others go into a [`KVec`].

use kernel::{
    alloc::Flags,
    prelude::*, //
};

/// A list whose first element is stored in place, the others in a vector, in order.
///
/// # Invariants
///
/// `rest` is empty while `first` is `None`.
pub(crate) struct InlineVec<T> {
    first: Option<T>,
    rest: KVec<T>,
}

impl<T> InlineVec<T> {
    /// An empty list (no allocation).
    pub(crate) const fn new() -> Self {
        // INVARIANT: Both parts are empty.
        Self {
            first: None,
            rest: KVec::new(),
        }
    }

    /// Whether the list holds no element.
    pub(crate) fn is_empty(&self) -> bool {
        // By the type invariant, `rest` is empty too.
        self.first.is_none()
    }

    /// The elements, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        Iterator::chain(self.first.iter(), self.rest.iter())
    }

    /// Makes room for one more element, so that the next [`InlineVec::push`] cannot fail.
    pub(crate) fn reserve_one(&mut self, flags: Flags) -> Result {
        if self.first.is_some() {
            self.rest.reserve(1, flags)?;
        }
        Ok(())
    }

    /// Appends `v` (in place if the list is empty).
    pub(crate) fn push(&mut self, v: T, flags: Flags) -> Result {
        if self.first.is_none() {
            // INVARIANT: `rest` was empty (type invariant); `first` is now set.
            self.first = Some(v);
            return Ok(());
        }
        self.rest.push(v, flags)?;
        Ok(())
    }

    /// Removes and returns the first element `f` accepts; the others keep their order.
    pub(crate) fn remove_first(&mut self, f: impl Fn(&T) -> bool) -> Option<T> {
        if self.first.as_ref().is_some_and(&f) {
            let v = self.first.take();
            if !self.rest.is_empty() {
                // INVARIANT: The second element moves in place, so `first` is only `None` again
                // if `rest` was empty.
                self.first = self.rest.remove(0).ok();
            }
            return v;
        }
        let pos = self.rest.iter().position(f)?;
        self.rest.remove(pos).ok()
    }

    /// Removes every element.
    pub(crate) fn clear(&mut self) {
        // INVARIANT: Both parts are empty.
        self.first = None;
        self.rest.clear();
    }
}
