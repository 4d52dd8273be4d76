//! Defines `cfg(sockets)`: the target has a socket backend (native, WASI 0.2 or WASI 0.3), and
//! `cfg(wasi_p3)`: the WASI backend is the 0.3 one (the `wasip3` feature on `wasm32-wasip2`, or
//! the `wasm32-wasip3` target). Without `sockets` the `unsupported` backend is built, and
//! helpers only the real backends use are unused.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(sockets)");
    println!("cargo::rustc-check-cfg=cfg(wasi_p3)");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let wasm = var("CARGO_CFG_TARGET_FAMILY")
        .split(',')
        .any(|family| family == "wasm");
    let wasi = var("CARGO_CFG_TARGET_OS") == "wasi";
    let env = var("CARGO_CFG_TARGET_ENV");
    let wasi_p3 = wasi
        && (env == "p3" || (env == "p2" && std::env::var_os("CARGO_FEATURE_WASIP3").is_some()));
    if !wasm || (wasi && env == "p2") || wasi_p3 {
        println!("cargo::rustc-cfg=sockets");
    }
    if wasi_p3 {
        println!("cargo::rustc-cfg=wasi_p3");
    }
}
