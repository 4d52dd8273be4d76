//! The readiness events of Core's `Sock::Wait`: [`SockEvent`] and [`Events`].

use std::fmt;
use std::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign, Sub, SubAssign};

/// A set of socket readiness events, with Core's bit values.
///
/// Core calls the type `Sock::Event` and the bits `RECV`, `SEND` and `ERR` (newest Core renames
/// them `RecvEvent`, `SendEvent` and `ErrorEvent`, same bits).
///
/// ```
/// use bitcoin_sock::SockEvent;
///
/// let ev = SockEvent::RECV | SockEvent::SEND;
/// assert!(ev.contains(SockEvent::RECV));
/// assert_eq!(ev.bits(), 0b011);
/// assert_eq!(format!("{ev:?}"), "RECV | SEND");
/// assert_eq!(ev - SockEvent::RECV, SockEvent::SEND); // set difference
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SockEvent(u8);

impl SockEvent {
    /// Data, end of stream or a pending connection is ready to be received (`POLLIN`).
    pub const RECV: SockEvent = SockEvent(0b001);
    /// Sending (or a finished connect) is ready (`POLLOUT`).
    pub const SEND: SockEvent = SockEvent(0b010);
    /// The socket is in error or hung up (`POLLERR`, `POLLHUP`, `POLLNVAL`). Never needs to be
    /// requested: it is reported whenever it happens.
    pub const ERR: SockEvent = SockEvent(0b100);

    const ALL: [(SockEvent, &'static str); 3] = [
        (SockEvent::RECV, "RECV"),
        (SockEvent::SEND, "SEND"),
        (SockEvent::ERR, "ERR"),
    ];

    /// The empty set.
    pub const fn empty() -> SockEvent {
        SockEvent(0)
    }

    /// The set with the given bits; bits other than `RECV`, `SEND` and `ERR` are dropped.
    pub const fn from_bits_truncate(bits: u8) -> SockEvent {
        SockEvent(bits & 0b111)
    }

    /// The raw bits, as Core's `uint8_t Event`.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every event of `other` is in `self`.
    pub const fn contains(self, other: SockEvent) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether `self` and `other` have an event in common.
    pub const fn intersects(self, other: SockEvent) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether no event is in the set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The events of `self` that are not in `other` (also `self - other`), as bitflags'
    /// `difference`.
    ///
    /// ```
    /// use bitcoin_sock::SockEvent;
    ///
    /// let requested = SockEvent::RECV | SockEvent::SEND;
    /// assert_eq!(requested.difference(SockEvent::RECV), SockEvent::SEND);
    /// assert!(SockEvent::RECV.difference(SockEvent::RECV).is_empty());
    /// ```
    pub const fn difference(self, other: SockEvent) -> SockEvent {
        SockEvent(self.0 & !other.0)
    }
}

impl Sub for SockEvent {
    type Output = SockEvent;
    /// [`difference`](SockEvent::difference).
    fn sub(self, rhs: SockEvent) -> SockEvent {
        self.difference(rhs)
    }
}

impl SubAssign for SockEvent {
    fn sub_assign(&mut self, rhs: SockEvent) {
        *self = self.difference(rhs);
    }
}

impl BitOr for SockEvent {
    type Output = SockEvent;
    fn bitor(self, rhs: SockEvent) -> SockEvent {
        SockEvent(self.0 | rhs.0)
    }
}

impl BitAnd for SockEvent {
    type Output = SockEvent;
    fn bitand(self, rhs: SockEvent) -> SockEvent {
        SockEvent(self.0 & rhs.0)
    }
}

impl BitOrAssign for SockEvent {
    fn bitor_assign(&mut self, rhs: SockEvent) {
        self.0 |= rhs.0;
    }
}

impl BitAndAssign for SockEvent {
    fn bitand_assign(&mut self, rhs: SockEvent) {
        self.0 &= rhs.0;
    }
}

impl fmt::Debug for SockEvent {
    /// Prints the names joined by `" | "`, e.g. `RECV | SEND`; the empty set prints `(empty)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("(empty)");
        }
        let mut first = true;
        for (event, name) in SockEvent::ALL {
            if self.contains(event) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// One entry of a many-socket wait ([`Sock::wait_many`](crate::Sock::wait_many)): the events
/// asked for and, after the wait, the events that occurred. Core's `Sock::Events`.
///
/// Made with [`Events::new`]; its fields are read and written directly. `#[non_exhaustive]`,
/// so a later version may add a field (as Core may add to its struct) without breaking code
/// that builds entries with `new`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Events {
    /// The events to wait for.
    pub requested: SockEvent,
    /// The events that occurred, filled in by the wait (may include [`SockEvent::ERR`] even
    /// when not requested).
    pub occurred: SockEvent,
}

impl Events {
    /// An entry that waits for `requested`, with nothing occurred yet.
    pub const fn new(requested: SockEvent) -> Events {
        Events {
            requested,
            occurred: SockEvent::empty(),
        }
    }
}
