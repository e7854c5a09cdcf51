#!/usr/bin/env bash
# Runs every fuzz target (or those named as arguments) for a bounded time each, with libFuzzer
# under AddressSanitizer, debug assertions and overflow checks.
#
#   fuzz/run.sh                      # every target, 60 s each
#   FUZZ_SECONDS=300 fuzz/run.sh range cursor
#
# Corpora grow in fuzz/corpus/<target>/ (kept between runs, not committed); seeds come from
# fuzz/seeds/<target>/ (those of icc_profile and image_probe, small profiles and 16×16
# images, are written by src/bin/make_seeds.rs), the range seeds are written here, and
# image_probe also starts from the photos of ../shared/testdata (small ones whole, prefixes
# of the others; nothing is copied into the repository), its inputs capped at 64 KiB
# (-max_len) so each run stays fast. A crash, panic, leak, timeout (-timeout, seconds per
# input) or memory blow-up (-rss_limit_mb) stops that target with its input in
# fuzz/artifacts/<target>/; the script then goes on with the others and exits non-zero.
# Reproduce one with `cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>`, and
# keep it as a unit test next to the code it broke.
set -euo pipefail

cd "$(dirname "$0")"
fuzz_dir=$(pwd)
testdata=$(cd .. && pwd)/../shared/testdata

seconds=${FUZZ_SECONDS:-60}
all_targets=(tus_headers cursor range json_bodies image_probe icc_profile)
if (($# > 0)); then
    targets=("$@")
else
    targets=("${all_targets[@]}")
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# Sanitizer flags need a nightly compiler: rustup's if there is one, else the stable one
# unlocked.
if command -v rustup >/dev/null 2>&1 && rustup run nightly rustc --version >/dev/null 2>&1; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi

# Range inputs are 8 bytes of object size (little-endian) and then the header value.
range_seed() {
    local name=$1 total=$2 header=$3 hex i
    hex=$(printf '%016x' "$total")
    {
        for i in 14 12 10 8 6 4 2 0; do
            printf '%b' "\\x${hex:$i:2}"
        done
        printf '%s' "$header"
    } >"$seeds/$name"
}

# Image inputs are one byte choosing the declared type (0 JPEG, 1 PNG, 2 WebP), then the file.
image_seeds() {
    local file base selector
    for file in "$testdata"/photos/* "$testdata"/hostile/*; do
        [[ -f $file ]] || continue
        base=$(basename "$file")
        case $base in
            *.png) selector='\x01' ;;
            *.webp) selector='\x02' ;;
            *) selector='\x00' ;;
        esac
        # Whole files only when small (each run decodes them); of the others, the first
        # 16 KiB: the headers (EXIF, dimensions, CMYK, progressive) and the start of the data.
        if (($(wc -c <"$file") <= 256 * 1024)); then
            { printf '%b' "$selector"; cat "$file"; } >"$seeds/$base"
        else
            { printf '%b' "$selector"; head -c 16384 "$file"; } >"$seeds/$base.head"
        fi
    done
}

failed=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    inputs=("corpus/$target")
    options=()
    case $target in
        range)
            seeds=corpus/range.seeds
            mkdir -p "$seeds"
            range_seed whole 100 'bytes=0-'
            range_seed suffix 100 'bytes=-5'
            range_seed clamped 100 'bytes=90-1000'
            range_seed several 100 'bytes=0-0, 50-'
            range_seed empty_object 0 'bytes=-1'
            range_seed huge 18446744073709551615 'bytes=18446744073709551614-99999999999999999999'
            inputs+=("$seeds")
            ;;
        image_probe)
            seeds=corpus/image_probe.seeds
            mkdir -p "$seeds"
            if [[ -d $testdata/photos ]]; then
                image_seeds
            else
                echo "note: $testdata not found; image_probe starts from its small seeds" >&2
            fi
            inputs+=(seeds/image_probe "$seeds")
            options+=(-max_len=65536)
            ;;
        *)
            [[ -d seeds/$target ]] && inputs+=("seeds/$target")
            ;;
    esac
    echo "== $target: ${seconds}s"
    if ! "${fuzz[@]}" run "$target" "${inputs[@]}" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 "${options[@]}" \
        -artifact_prefix="$fuzz_dir/artifacts/$target/" -print_final_stats=1; then
        failed+=("$target")
    fi
done

if ((${#failed[@]} > 0)); then
    echo "fuzzing found problems in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "no crashes: ${targets[*]}"
