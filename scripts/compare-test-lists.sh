#!/usr/bin/env bash
# Fails when a test of a shared test file (tests/*.rs, which run natively and in wasmtime) is
# missing from the wasm32-wasip2 run: a file that compiled empty in wasm, a #[cfg] that hid a
# test, a renamed test on one side only. Native-only files and tests (and the few tests only
# the wasm side has) are listed, with their reasons, in scripts/native-only-tests.txt; nothing
# else may differ: a shared file means the same tests.
#
# Then the same for the two WASI backends: every shared file's tests in the WASI 0.2 run
# (wasm32-wasip2) and in the WASI 0.3 run (`--features wasip3`), the exceptions listed in the
# same file (sides "p2": only on 0.2, "p3": only on 0.3).
#
# Needs the wasm32-wasip2 target and wasmtime (the runner of .cargo/config.toml); builds the
# test binaries when they are not built yet.
set -euo pipefail
cd "$(dirname "$0")/.."

list_file=scripts/native-only-tests.txt
# The entries of one side ("native" or "wasm"): "FILE" or "FILE::TEST", a TEST ending in "*"
# naming every test it starts.
listed() { grep -v '^[[:space:]]*#' "$list_file" | awk -v side="$1" '$1 == side { print $2 }'; }
# Whether FILE::NAME is listed for SIDE.
is_listed() {
    local side=$1 entry=$2 pattern
    while read -r pattern; do
        # shellcheck disable=SC2053 # the entry is a glob on purpose
        [[ "$entry" == $pattern ]] && return 0
    done < <(listed "$side")
    return 1
}

# The test names of one test target, sorted.
test_names() {
    local target=$1
    shift
    cargo test --quiet "$@" --test "$target" -- --list |
        sed -n 's/: test$//p' | sort
}

failed=0
compared=0
for file in tests/*.rs; do
    target=$(basename "$file" .rs)
    if is_listed native "$file"; then
        echo "native only (scripts/native-only-tests.txt): $file"
        continue
    fi
    native=$(test_names "$target")
    wasm=$(test_names "$target" --target wasm32-wasip2)
    native_count=$(grep -c . <<<"$native" || true)
    wasm_count=$(grep -c . <<<"$wasm" || true)
    if [ "$native_count" -eq 0 ]; then
        echo "FAILED: $file has no native test" >&2
        failed=1
        continue
    fi
    missing=$(comm -23 <(echo "$native") <(echo "$wasm") | while read -r name; do
        is_listed native "$file::$name" || echo "$name"
    done)
    extra=$(comm -13 <(echo "$native") <(echo "$wasm") | while read -r name; do
        is_listed wasm "$file::$name" || echo "$name"
    done)
    if [ -n "$missing" ]; then
        echo "FAILED: $file: native tests missing in wasm32-wasip2 (and not in $list_file):" >&2
        sed 's/^/    /' <<<"$missing" >&2
        failed=1
    fi
    if [ -n "$extra" ]; then
        echo "FAILED: $file: tests only the wasm32-wasip2 run has (and not in $list_file):" >&2
        sed 's/^/    /' <<<"$extra" >&2
        failed=1
    fi
    if [ -z "$missing" ] && [ -z "$extra" ]; then
        echo "no unlisted difference natively and in wasm32-wasip2: $file ($native_count native, $wasm_count wasm)"
    fi
    compared=$((compared + 1))
done

# WASI 0.2 against WASI 0.3: the same shared files, the same tests.
for file in tests/*.rs; do
    target=$(basename "$file" .rs)
    is_listed native "$file" && continue
    p2=$(test_names "$target" --target wasm32-wasip2)
    p3=$(test_names "$target" --target wasm32-wasip2 --features wasip3)
    p2_count=$(grep -c . <<<"$p2" || true)
    p3_count=$(grep -c . <<<"$p3" || true)
    # `||` as above: a loop whose last name is listed must still succeed (set -e).
    missing=$(comm -23 <(echo "$p2") <(echo "$p3") | while read -r name; do
        [ -z "$name" ] || is_listed p2 "$file::$name" || echo "$name"
    done)
    extra=$(comm -13 <(echo "$p2") <(echo "$p3") | while read -r name; do
        [ -z "$name" ] || is_listed p3 "$file::$name" || echo "$name"
    done)
    if [ -n "$missing" ]; then
        echo "FAILED: $file: WASI 0.2 tests missing on WASI 0.3 (and not in $list_file):" >&2
        sed 's/^/    /' <<<"$missing" >&2
        failed=1
    fi
    if [ -n "$extra" ]; then
        echo "FAILED: $file: tests only the WASI 0.3 run has (and not in $list_file):" >&2
        sed 's/^/    /' <<<"$extra" >&2
        failed=1
    fi
    if [ -z "$missing" ] && [ -z "$extra" ]; then
        echo "no unlisted difference on WASI 0.2 and WASI 0.3: $file ($p2_count on 0.2, $p3_count on 0.3)"
    fi
done

# A listed name that no longer exists would hide nothing, but it would mislead: keep the list true.
while read -r entry; do
    file=${entry%%::*}
    [ -f "$file" ] || { echo "FAILED: $list_file lists $entry, but $file does not exist" >&2; failed=1; }
done < <(listed native; listed wasm; listed p2; listed p3)

if [ "$compared" -eq 0 ]; then
    echo "FAILED: no shared test file compared" >&2
    exit 1
fi
exit "$failed"
