//! A wasmtime embedding that runs a WASI command component under a network policy, the way
//! edge platforms configure theirs: `WasiCtxBuilder::socket_addr_check` allows only the
//! addresses given below, UDP and name lookup are off, and everything else a guest tries is
//! answered `access-denied`.
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
//!
//! Both WASI 0.2 and WASI 0.3 are linked, with the one policy (wasmtime-wasi checks addresses
//! in the socket layer the two share): a component exporting `wasi:cli/run@0.3` (this crate's
//! `wasip3` backend) is run through its async export, one exporting `wasi:cli/run@0.2` through
//! the synchronous one, as `wasmtime run` chooses.

mod policy;

use std::process::ExitCode;
use std::sync::Arc;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

use policy::{Policy, Rule};

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

/// The policy and the guest's arguments (the component's path first) from the command line.
fn parse_args() -> Result<(Policy, Vec<String>), String> {
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
    Ok((
        policy,
        std::iter::once(component_path).chain(args).collect(),
    ))
}

/// Instantiates the component and calls its `wasi:cli/run`: the 0.3 one if it exports that
/// (an async export, so inside the store's event loop), else the 0.2 one. `Ok(Err(()))` is
/// the guest's `run` returning an error.
async fn run_component(
    store: &mut Store<Host>,
    component: &Component,
    linker: &Linker<Host>,
) -> wasmtime::Result<Result<(), ()>> {
    let instance = linker.instantiate_async(&mut *store, component).await?;
    if let Ok(command) = wasmtime_wasi::p3::bindings::Command::new(&mut *store, &instance) {
        return store
            .run_concurrent(async |store| command.wasi_cli_run().call_run(store).await)
            .await?;
    }
    wasmtime_wasi::p2::bindings::Command::new(&mut *store, &instance)?
        .wasi_cli_run()
        .call_run(&mut *store)
        .await
}

fn run() -> Result<ExitCode, String> {
    let (policy, guest_args) = parse_args()?;
    let component_path = guest_args[0].clone();

    let engine = Engine::default();
    let component = Component::from_file(&engine, &component_path)
        .map_err(|err| format!("{component_path}: {err:?}"))?;
    let mut linker = Linker::<Host>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|err| format!("{err:?}"))?;
    wasmtime_wasi::p3::add_to_linker(&mut linker).map_err(|err| format!("{err:?}"))?;

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

    // wasmtime-wasi's own Tokio runtime drives the guest's sockets and timers.
    let result = wasmtime_wasi::runtime::in_tokio(run_component(&mut store, &component, &linker));
    match result {
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
