//! What a backend can do beyond exclusive locking, discoverable up front.

use std::fmt;

/// One thing a backend may or may not be able to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability {
    /// Shared (reader) locks.
    Shared,
    /// Fencing tokens that increase for successive holders.
    FencingTokens,
    /// Telling a holder that its lock was lost while held.
    LossNotification,
    /// Asking holders to release.
    Revocation,
    /// The administration interface ([`Admin`](super::Admin)).
    Admin,
    /// Taking a held lock away from its holders
    /// ([`Admin::clear`](super::Admin::clear)).
    Clear,
    /// Telling how old a lock's record is (for
    /// [`CleanOptions::older_than`](super::CleanOptions::older_than)).
    Age,
}

impl Capability {
    const fn bit(self) -> u8 {
        1 << self as u8
    }

    /// A short description, for messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Capability::Shared => "shared (reader) locks",
            Capability::FencingTokens => "fencing tokens",
            Capability::LossNotification => "loss notification",
            Capability::Revocation => "revocation",
            Capability::Admin => "administration (list, inspect, remove)",
            Capability::Clear => "clearing a held lock (its holders would lose it)",
            Capability::Age => "telling how old a lock is",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`Capability`]s.
///
/// ```
/// use lockutils_core::backend::{Capabilities, Capability};
/// let caps = Capabilities::NONE.with(Capability::Shared);
/// assert!(caps.has(Capability::Shared));
/// assert!(!caps.has(Capability::FencingTokens));
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Capabilities(u8);

impl Capabilities {
    /// Exclusive locks only.
    pub const NONE: Capabilities = Capabilities(0);

    /// This set plus `capability`.
    pub const fn with(self, capability: Capability) -> Self {
        Capabilities(self.0 | capability.bit())
    }

    /// Whether the set has `capability`.
    pub const fn has(self, capability: Capability) -> bool {
        self.0 & capability.bit() != 0
    }
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all = [
            Capability::Shared,
            Capability::FencingTokens,
            Capability::LossNotification,
            Capability::Revocation,
            Capability::Admin,
            Capability::Clear,
            Capability::Age,
        ];
        f.debug_set()
            .entries(all.iter().filter(|c| self.has(**c)))
            .finish()
    }
}
