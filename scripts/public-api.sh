#!/usr/bin/env bash
# The public API of bitcoin-sock, listed per target family whose API differs (api/native.txt
# for x86_64-unknown-linux-gnu, api/wasi.txt for wasm32-wasip2, api/wasip3.txt for
# wasm32-wasip2 with the `wasip3` feature, whose backend adds `wasip3_main!` and its entry),
# and compared with the committed listings: any change to the public surface fails here until
# the listing is regenerated and committed, so it is always a visible diff in review.
#
#   scripts/public-api.sh            compare (what scripts/test-all.sh runs)
#   scripts/public-api.sh --update   regenerate api/*.txt after an intended change
#
# The listing comes from cargo-public-api, which reads rustdoc's JSON output. That output is
# unstable: each cargo-public-api release reads one format version. It is produced here with
# the project's own toolchain (stable, RUSTC_BOOTSTRAP=1 for rustdoc's unstable flag only),
# not nightly: nightly's rust-std for wasm32-wasip2 is not installable on every machine, the
# stable toolchain has every target test-all.sh adds, and one toolchain for both listings means
# they cannot differ for toolchain reasons. Rust 1.95 writes format 57, which
# cargo-public-api 0.52 reads (pinned below; scripts/test-all.sh installs it). On a toolchain
# bump, pick the cargo-public-api release whose rustdoc-types version equals the new format.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_PUBLIC_API_VERSION=0.52.0
RUSTDOC_FORMAT=57

update=0
case "${1:-}" in
    --update) update=1 ;;
    "") ;;
    *)
        echo "usage: $0 [--update]" >&2
        exit 2
        ;;
esac

if [ "$(cargo public-api --version 2>/dev/null || true)" != "cargo-public-api $CARGO_PUBLIC_API_VERSION" ]; then
    echo "FAILED: cargo-public-api $CARGO_PUBLIC_API_VERSION is needed:" \
        "cargo install --locked cargo-public-api@$CARGO_PUBLIC_API_VERSION" >&2
    exit 1
fi

# Its own target folder: rustdoc's JSON flags would otherwise invalidate the ordinary builds.
target_dir=target/public-api
failed=0
# name:target[:features]. A build with features has its own folder: its JSON would otherwise
# overwrite the same target's without them.
for entry in native:x86_64-unknown-linux-gnu wasi:wasm32-wasip2 wasip3:wasm32-wasip2:wasip3; do
    IFS=: read -r name target features <<<"$entry"
    RUSTC_BOOTSTRAP=1 cargo rustdoc --quiet --lib --target "$target" \
        --target-dir "$target_dir${features:+/$features}" ${features:+--features "$features"} \
        -- -Z unstable-options --output-format json
    json="$target_dir${features:+/$features}/$target/doc/bitcoin_sock.json"
    format=$(sed -n 's/.*"format_version":\([0-9]*\).*/\1/p' "$json" | head -n1)
    if [ "$format" != "$RUSTDOC_FORMAT" ]; then
        echo "FAILED: rustdoc wrote JSON format $format; cargo-public-api" \
            "$CARGO_PUBLIC_API_VERSION reads $RUSTDOC_FORMAT (see the top of $0)" >&2
        exit 1
    fi
    listing=$(cargo public-api --rustdoc-json "$json" --omit blanket-impls,auto-trait-impls)
    file="api/$name.txt"
    if [ "$update" -eq 1 ]; then
        mkdir -p api
        printf '%s\n' "$listing" >"$file"
        echo "wrote $file ($(wc -l <"$file") items, $target${features:+ --features $features})"
    elif ! diff -u "$file" <(printf '%s\n' "$listing"); then
        echo "FAILED: the public API for $target${features:+ --features $features} differs from $file (above: - committed," \
            "+ now). If the change is intended, run $0 --update and commit $file." >&2
        failed=1
    else
        echo "$file: the public API for $target${features:+ --features $features} is as committed ($(wc -l <"$file") items)"
    fi
done
exit "$failed"
