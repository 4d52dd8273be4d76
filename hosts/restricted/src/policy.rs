//! The network policy: which addresses the guest may bind, listen on and connect to.

use std::net::{IpAddr, SocketAddr};

use wasmtime_wasi::sockets::SocketAddrUse;

/// An address with every port, or one exact socket address.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    Ip(IpAddr),
    Addr(SocketAddr),
}

impl Rule {
    pub fn parse(flag: &str, text: &str) -> Result<Rule, String> {
        if let Ok(ip) = text.parse() {
            return Ok(Rule::Ip(ip));
        }
        text.parse()
            .map(Rule::Addr)
            .map_err(|_| format!("{flag} {text}: not an IP address or IP:PORT"))
    }

    fn matches(&self, addr: SocketAddr) -> bool {
        match *self {
            Rule::Ip(ip) => addr.ip() == ip,
            Rule::Addr(allowed) => addr == allowed,
        }
    }
}

/// What the guest may do with which address.
#[derive(Debug, Default)]
pub struct Policy {
    pub bind: Vec<Rule>,
    pub listen: Vec<Rule>,
    pub connect: Vec<Rule>,
}

impl Policy {
    pub fn permits(&self, addr: SocketAddr, used_for: SocketAddrUse) -> bool {
        let any = |rules: &[Rule]| rules.iter().any(|rule| rule.matches(addr));
        match used_for {
            SocketAddrUse::TcpBind => {
                (addr.ip().is_unspecified() && addr.port() == 0) || any(&self.bind)
            }
            SocketAddrUse::TcpListen => any(&self.listen),
            SocketAddrUse::TcpConnect => any(&self.connect),
            SocketAddrUse::TcpAccept => true,
            _ => false,
        }
    }
}
