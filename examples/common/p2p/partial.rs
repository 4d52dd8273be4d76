//! The message being read, held in pieces until it is complete.
//!
//! A peer may announce a 4,000,000-byte payload and send it slowly, or never finish it; 125
//! such peers are what a node's memory must survive. Growing one buffer per message (doubling
//! as bytes come) makes the allocator hold up to twice what arrived, in blocks of every size
//! that it keeps after they are freed (glibc's heap; wasm's linear memory, which never
//! shrinks). Here the payload is held in pieces of at most [`PIECE`] bytes, each allocated for
//! exactly what it will hold, and made one buffer only once the message is complete: what a
//! peer makes the node hold is what it sent, in blocks the allocator reuses.

use super::framing::HEADER_LEN;

/// The most bytes one piece holds: one receive (Core's 64 KiB buffer).
pub const PIECE: usize = 64 * 1024;

/// An unfinished message: its header bytes, then its payload in pieces.
#[derive(Debug, Default)]
pub struct Partial {
    header: Vec<u8>,
    pieces: Vec<Vec<u8>>,
    len: usize,
}

impl Partial {
    /// Bytes held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is held (between messages).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Memory held: what the pieces were allocated for.
    pub fn capacity(&self) -> usize {
        self.header.capacity()
            + self.pieces.capacity() * std::mem::size_of::<Vec<u8>>()
            + self.pieces.iter().map(Vec::capacity).sum::<usize>()
    }

    /// The 24 header bytes, once they are all in.
    pub fn header(&self) -> Option<&[u8; HEADER_LEN]> {
        self.header.first_chunk::<HEADER_LEN>()
    }

    /// Appends `bytes`, of which the message needs `wanted` more (`bytes` is at most that):
    /// a new piece is sized for what is left of the message, up to [`PIECE`].
    pub fn push(&mut self, mut bytes: &[u8], wanted: usize) {
        self.len += bytes.len();
        let mut wanted = wanted.max(bytes.len());
        if self.header.len() < HEADER_LEN {
            let take = (HEADER_LEN - self.header.len()).min(bytes.len());
            self.header.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            wanted -= take;
        }
        while !bytes.is_empty() {
            let piece = match self.pieces.last_mut() {
                Some(piece) if piece.len() < piece.capacity() => piece,
                _ => {
                    self.pieces.push(Vec::with_capacity(wanted.min(PIECE)));
                    // Just pushed.
                    let Some(piece) = self.pieces.last_mut() else {
                        return;
                    };
                    piece
                }
            };
            let take = (piece.capacity() - piece.len()).min(bytes.len());
            piece.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            wanted -= take;
        }
    }

    /// The whole message as one buffer (header and payload); nothing is held afterwards. The
    /// pieces are freed as they are copied, so the peak is one message and one piece.
    pub fn take_whole(&mut self) -> Vec<u8> {
        let mut whole = Vec::with_capacity(self.len);
        whole.append(&mut self.header);
        for piece in self.pieces.drain(..) {
            whole.extend_from_slice(&piece);
        }
        *self = Partial::default();
        whole
    }
}
