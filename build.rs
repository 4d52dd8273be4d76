//! Defines `cfg(sockets)`: the target has a socket backend (native, or WASI preview 2). Without
//! it the `unsupported` backend is built, and helpers only the real backends use are unused.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(sockets)");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let wasm = var("CARGO_CFG_TARGET_FAMILY")
        .split(',')
        .any(|family| family == "wasm");
    let wasi_p2 = var("CARGO_CFG_TARGET_OS") == "wasi" && var("CARGO_CFG_TARGET_ENV") == "p2";
    if !wasm || wasi_p2 {
        println!("cargo::rustc-cfg=sockets");
    }
}
