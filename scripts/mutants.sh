#!/usr/bin/env bash
# Mutation testing of the host-independent code (Core's algorithms, SOCKS5, errors, events,
# the interrupt) with cargo-mutants: every mutant must be caught by a test, or be listed in
# .cargo/mutants.toml (exclude_re) with the reason it cannot change behaviour. Which files and
# which test targets: .cargo/mutants.toml. Results: TESTING.md; the full report lands in
# ${MUTANTS_OUT:-target/mutants}/mutants.out (caught.txt, missed.txt, timeout.txt, ...).
#
# Not part of scripts/test-all.sh: it builds and tests each of ~470 mutants (about 5 s each on
# two cores, two at a time: about 40 minutes).
# Extra arguments go to cargo-mutants, e.g. `-j 2` or `--list` (`--file` adds to the files of
# .cargo/mutants.toml rather than narrowing them).
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned: the version the score in TESTING.md was measured with (needs rustc >= 1.88).
CARGO_MUTANTS_VERSION=27.1.0
if [ "$(cargo mutants --version 2>/dev/null || true)" != "cargo-mutants $CARGO_MUTANTS_VERSION" ]; then
    cargo install --locked "cargo-mutants@$CARGO_MUTANTS_VERSION"
fi

out=${MUTANTS_OUT:-target/mutants}
mkdir -p "$out"
# No debug info: each mutant links seven test binaries, and linking is most of a build.
status=0
CARGO_PROFILE_DEV_DEBUG=0 cargo mutants --no-shuffle --output "$out" "$@" || status=$?

# The WASI-only code of the mutated files (ReadAhead::append: the WASI backend's read-ahead
# takes the host's read buffers) is compiled out natively, where no test can see it: it is
# mutated and judged again in wasmtime, by the same test targets built for wasm32-wasip2.
wasi_status=0
CARGO_PROFILE_DEV_DEBUG=0 cargo mutants --no-shuffle --output "$out/wasi" \
    --re 'ReadAhead::append' --cargo-arg=--target=wasm32-wasip2 || wasi_status=$?

# The native pass also lists ReadAhead::append, as missed (no native code runs it): the WASI
# pass is its judge, so the native pass's outcome for it is not counted.
count() {
    {
        grep -v 'ReadAhead::append' "$out/mutants.out/$1.txt" 2>/dev/null || true
        cat "$out/wasi/mutants.out/$1.txt" 2>/dev/null || true
    } | grep -c . || true
}
report="$out/mutants.out and $out/wasi/mutants.out"
caught=$(count caught)
missed=$(count missed)
timeout=$(count timeout)
unviable=$(count unviable)
echo "caught $caught, missed $missed, timed out $timeout, unviable (do not compile) $unviable"
if [ "$missed" -ne 0 ] || [ "$timeout" -ne 0 ]; then
    echo "FAILED: every mutant must be caught (and fast): see missed.txt, timeout.txt in $report" >&2
    exit 1
fi
# cargo-mutants exits 2 for missed and 3 for timed-out mutants, which the counts above judge
# (the native pass always "misses" ReadAhead::append); anything else is its own failure: a
# usage error, or an unmutated tree that fails its tests.
for code in "$status" "$wasi_status"; do
    case $code in
    0 | 2 | 3) ;;
    *)
        echo "FAILED: cargo-mutants exited with $code" >&2
        exit 1
        ;;
    esac
done
echo "every viable mutant caught"
