//! The Bitcoin P2P pieces the light client (`examples/light_client/`), the node
//! (`examples/node/`) and the edge client (`examples/edge/`) share, and the tests check on their
//! own: the wire format (rust-bitcoin's messages behind a hand-checked 24-byte header), the
//! networks, the checked header chain, Core's keep-alive, and one connection's protocol state
//! (sans-IO: bytes in, bytes out). No socket I/O here.
//!
//! Each example includes this directory with `#[path = "../common/p2p/mod.rs"] mod p2p;`
//! (cargo builds every example as its own crate, so a module shared by two is shared by path).

pub mod chain;
pub mod framing;
pub mod keepalive;
pub mod network;
pub mod partial;
pub mod protocol;
