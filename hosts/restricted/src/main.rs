//! A wasmtime embedding that runs a `wasm32-wasip2` command component under a network policy,
//! the way edge platforms configure theirs: `WasiCtxBuilder::socket_addr_check` allows only
//! the addresses given below, UDP and name lookup are off, and everything else a guest tries
//! is answered `access-denied`.
//!
//! ```text
//! restricted-host [--bind ADDR] [--listen ADDR] [--connect ADDR]... COMPONENT.wasm [ARGS...]
//! ```
//!
//! Each flag may repeat. `ADDR` is an IP address (every port) or one exact `IP:PORT` (`[::1]:0`
//! allows binding an ephemeral port of `::1`, not listening on it). `--bind` allows explicit
//! binds, `--listen` listening on a bound address, `--connect` connecting to the address.
//! Always allowed: the implicit bind to the unspecified address that every outbound connect
//! does (wasmtime checks it as a bind of `0.0.0.0:0` / `[::]:0`), and accepting on a listener
//! the policy let listen. The guest gets the host's environment and stdio, and
//! `COMPONENT.wasm ARGS...` as its arguments, so this host can be cargo's runner
//! (`CARGO_TARGET_WASM32_WASIP2_RUNNER`); its exit code is the guest's.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

/// An address with every port, or one exact socket address.
#[derive(Debug, Clone, Copy)]
enum Rule {
    Ip(IpAddr),
    Addr(SocketAddr),
}

impl Rule {
    fn parse(flag: &str, text: &str) -> Result<Rule, String> {
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
struct Policy {
    bind: Vec<Rule>,
    listen: Vec<Rule>,
    connect: Vec<Rule>,
}

impl Policy {
    fn permits(&self, addr: SocketAddr, used_for: SocketAddrUse) -> bool {
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

struct Host {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

fn usage() -> String {
    "usage: restricted-host [--bind ADDR] [--listen ADDR] [--connect ADDR]... COMPONENT.wasm [ARGS...]"
        .into()
}

fn run() -> Result<ExitCode, String> {
    let mut args = std::env::args().skip(1);
    let mut policy = Policy::default();
    let component_path = loop {
        match args.next() {
            Some(flag) if ["--bind", "--listen", "--connect"].contains(&flag.as_str()) => {
                let rule = Rule::parse(&flag, &args.next().ok_or_else(usage)?)?;
                match flag.as_str() {
                    "--bind" => policy.bind.push(rule),
                    "--listen" => policy.listen.push(rule),
                    _ => policy.connect.push(rule),
                }
            }
            Some(flag) if flag.starts_with("--") => return Err(usage()),
            Some(path) => break path,
            None => return Err(usage()),
        }
    };
    let guest_args: Vec<String> = std::iter::once(component_path.clone())
        .chain(args)
        .collect();

    let engine = Engine::default();
    let component = Component::from_file(&engine, &component_path)
        .map_err(|err| format!("{component_path}: {err:?}"))?;
    let mut linker = Linker::<Host>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|err| format!("{err:?}"))?;

    let policy = Arc::new(policy);
    let mut builder = WasiCtx::builder();
    builder
        .inherit_stdio()
        .inherit_env()
        .args(&guest_args)
        .allow_tcp(true)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(move |addr, used_for| {
            let permitted = policy.permits(addr, used_for);
            Box::pin(async move { permitted })
        });
    let mut store = Store::new(
        &engine,
        Host {
            ctx: builder.build(),
            table: ResourceTable::new(),
        },
    );

    let command = Command::instantiate(&mut store, &component, &linker)
        .map_err(|err| format!("{component_path}: {err:?}"))?;
    match command.wasi_cli_run().call_run(&mut store) {
        Ok(Ok(())) => Ok(ExitCode::SUCCESS),
        Ok(Err(())) => Ok(ExitCode::FAILURE),
        Err(err) => match err.downcast_ref::<I32Exit>() {
            // std::process::exit in the guest (the test harness exits 101 on a failure).
            Some(&I32Exit(code)) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(1))),
            None => Err(format!("{component_path}: {err:?}")),
        },
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(message) => {
            eprintln!("restricted-host: {message}");
            ExitCode::from(2)
        }
    }
}
