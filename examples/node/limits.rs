//! The node's bounds against hostile peers, as flags: how long a message may take, how much
//! all peers together may make the node hold, how many lines a second it prints. Parsed here
//! so `main.rs` only hands over the flags it does not know.

use std::time::Duration;

use bitcoin_sock::sockman::{Options, DEFAULT_MEMORY_BUDGET};

/// The flags' lines in the usage text.
pub const USAGE: &str = "\
  --message-timeout S   drop a peer whose message is not complete S seconds after its
                        first byte (default 60, Core's -peertimeout)
  --max-memory BYTES    the most all peers together may make the node hold: unfinished and
                        unprocessed messages, queued replies (default 33554432, 32 MiB); past
                        it the peer holding the most is dropped
  --log-rate N          print at most N lines a second, counting the rest (default 20)";

/// The bounds, with their defaults.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From a message's first byte to its last (`Timeouts::message`).
    pub message_timeout: Duration,
    /// `Options::memory_budget` of the node's `SockMan`.
    pub max_memory: usize,
    /// Lines a second the node prints at most.
    pub log_rate: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            message_timeout: Duration::from_secs(60),
            max_memory: DEFAULT_MEMORY_BUDGET,
            log_rate: 20,
        }
    }
}

impl Limits {
    /// Takes `name` if it is one of these flags, with `value` giving its value: `Ok(true)`
    /// when taken, `Ok(false)` when not one of these.
    ///
    /// # Errors
    /// A value that is missing or not a number, said in a line for the user.
    pub fn parse_flag(
        &mut self,
        name: &str,
        value: impl FnOnce() -> Result<String, String>,
    ) -> Result<bool, String> {
        match name {
            "--message-timeout" => {
                let value = value()?;
                self.message_timeout = value
                    .parse::<f64>()
                    .ok()
                    .filter(|secs| *secs > 0.0)
                    .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
                    .ok_or(format!(
                        "--message-timeout wants seconds above 0, not {value:?}"
                    ))?;
            }
            "--max-memory" => {
                let value = value()?;
                self.max_memory = value
                    .parse()
                    .map_err(|_| format!("--max-memory wants bytes, not {value:?}"))?;
            }
            "--log-rate" => {
                let value = value()?;
                self.log_rate = value
                    .parse()
                    .map_err(|_| format!("--log-rate wants lines a second, not {value:?}"))?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The `SockMan` options these bounds set.
    pub fn sockman_options(&self) -> Options {
        Options::default().with_memory_budget(self.max_memory)
    }
}
