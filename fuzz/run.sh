#!/usr/bin/env bash
# Runs the fuzz targets built in fuzz/build/ (the Makefile calls this).
#
#   run.sh fuzz SECS TARGET...   fuzz each target SECS seconds, one after the
#                                other, on a copy of fuzz/corpus/TARGET in a
#                                temporary directory (FUZZ_KEEP=dir: in
#                                dir/TARGET instead, kept); a crash is saved
#                                as fuzz/regressions/TARGET/crash-*
#   run.sh regress TARGET...     run every file of fuzz/regressions/TARGET and
#                                fuzz/corpus/TARGET once
#   run.sh coverage TARGET...    line coverage of src/core by the corpus
#                                (CORPORA=dir: the corpora in dir/TARGET)
#   run.sh merge TARGET...       add to fuzz/corpus/TARGET the inputs of
#                                CORPORA/TARGET (a FUZZ_KEEP run) that reach
#                                features the corpus does not (libFuzzer -merge)
#
# Exits non-zero if any target crashed (or timed out, or ran out of memory).
# FUZZ_ARGS adds libFuzzer options to every fuzzing run.
set -uo pipefail
cd "$(dirname "$0")"

mode=${1:?usage: run.sh fuzz SECS TARGET... | regress TARGET... | coverage TARGET... | merge TARGET...}
shift

# Inputs a target may grow to: wsproto needs room for a whole 4096-byte
# message with its headers and chunk sizes.
max_len() {
    case "$1" in
        wsproto) echo 8192 ;;
        *) echo 4096 ;;
    esac
}

files_in() {   # the non-hidden regular files of the directories given
    local d
    for d in "$@"; do
        [ -d "$d" ] && find "$d" -maxdepth 1 -type f ! -name '.*' | sort
    done
}

failed=()

fuzz() {
    local secs=$1 t=$2 work log rc
    if [ -n "${FUZZ_KEEP:-}" ]; then
        work=$FUZZ_KEEP/$t
        rm -rf "$work" && mkdir -p "$work"
    else
        work=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-$t.XXXXXX")
    fi
    files_in "corpus/$t" | while read -r f; do cp "$f" "$work/"; done
    mkdir -p "regressions/$t"
    log=build/$t.log
    echo "== $t: fuzzing ${secs}s on $(files_in "$work" | wc -l) seed(s) (log: fuzz/$log)"
    # shellcheck disable=SC2086
    build/"$t" -max_total_time="$secs" -timeout=10 -report_slow_units=10 \
        -max_len="$(max_len "$t")" -use_value_profile=1 -print_final_stats=1 \
        -artifact_prefix="regressions/$t/" ${FUZZ_ARGS:-} "$work" >"$log" 2>&1
    rc=$?
    # The last status line (#runs ... cov: ... ft: ... corp: ... exec/s: ...)
    # and the final statistics.
    grep -E '^#[0-9]+' "$log" | tail -n 1 | sed 's/^/   /'
    grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|stat::peak_rss_mb)' "$log" | sed 's/^/   /'
    echo "   corpus after the run: $(files_in "$work" | wc -l) input(s)"
    if [ $rc -ne 0 ]; then
        echo "   FAILED (exit $rc):"
        grep -E -m 1 -A 12 '^(==[0-9]+==ERROR|.*check failed|.*runtime error|ALARM|==[0-9]+== ERROR)' "$log" | sed 's/^/   | /'
        grep -E 'Test unit written to' "$log" | sed 's/^/   /'
        failed+=("$t")
    fi
    [ -n "${FUZZ_KEEP:-}" ] || rm -rf "$work"
}

regress() {
    local t=$1 regs corp log rc
    regs=$(files_in "regressions/$t" | wc -l)
    corp=$(files_in "corpus/$t" | wc -l)
    log=build/$t.regress.log
    if [ $((regs + corp)) -eq 0 ]; then
        echo "== $t: nothing to replay"
        return
    fi
    files_in "regressions/$t" "corpus/$t" | tr '\n' '\0' | xargs -0 build/"$t" >"$log" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then
        echo "== $t: replayed $regs regression file(s) and $corp corpus file(s): ok"
    else
        echo "== $t: replaying $regs regression file(s) and $corp corpus file(s): FAILED (log: fuzz/$log)"
        grep -E '^Running:' "$log" | tail -n 1 | sed 's/^/   /'
        grep -E -m 1 -A 12 '^(==[0-9]+==ERROR|.*check failed|.*runtime error)' "$log" | sed 's/^/   | /'
        failed+=("$t")
    fi
}

merge() {
    local t=$1 from=${CORPORA:?CORPORA=dir: where a FUZZ_KEEP run kept its corpora}/$t before
    [ -d "$from" ] || { echo "== $t: no $from"; return; }
    before=$(files_in "corpus/$t" | wc -l)
    if build/"$t" -merge=1 -max_len="$(max_len "$t")" \
            "corpus/$t" "$from" >"build/$t.merge.log" 2>&1; then
        echo "== $t: corpus $before -> $(files_in "corpus/$t" | wc -l) input(s)," \
             "$(files_in "corpus/$t" | tr '\n' '\0' | xargs -0 cat | wc -c) bytes"
    else
        echo "== $t: merge FAILED (log: fuzz/build/$t.merge.log)"
        failed+=("$t")
    fi
}

llvm_tool() {   # the LLVM tool matching clang's version
    local major
    major=$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n 1)
    command -v "$1-$major" || command -v "$1" || {
        echo "$1 not found (Debian: apt-get install llvm-$major)" >&2
        exit 1
    }
}

coverage() {
    local t=$1 dir=${CORPORA:-corpus}/$t src prof
    local cov profdata
    cov=$(llvm_tool llvm-cov) && profdata=$(llvm_tool llvm-profdata) || exit 1
    rm -f build/cov/"$t"-*.profraw
    files_in "$dir" | tr '\n' '\0' |
        LLVM_PROFILE_FILE="build/cov/$t-%p.profraw" xargs -0 build/cov/"$t" >build/cov/"$t".log 2>&1
    prof=build/cov/$t.profdata
    "$profdata" merge -sparse build/cov/"$t"-*.profraw -o "$prof" || exit 1
    # The file a target is about (for utf8: one function of it).
    local only=
    case "$t" in
        linebuf) src=$(realpath ../src/core/linebuf.c) ;;
        utf8) src=$(realpath ../src/core/wsproto.c) only=ua_utf8_feed ;;
        *) src=$(realpath ../src/core/wsproto.c) ;;
    esac
    echo "== $t: $(files_in "$dir" | wc -l) input(s) from $dir"
    "$cov" report -show-functions build/cov/"$t" -instr-profile="$prof" "$src" |
        awk -v only="$only" 'only == "" || NR <= 3 || $1 == only' | sed 's/^/   /'
}

case "$mode" in
    fuzz)
        secs=${1:?seconds}
        shift
        for t in "$@"; do fuzz "$secs" "$t"; done
        ;;
    regress)
        for t in "$@"; do regress "$t"; done
        ;;
    coverage)
        for t in "$@"; do coverage "$t"; done
        ;;
    merge)
        for t in "$@"; do merge "$t"; done
        ;;
    *)
        echo "unknown mode: $mode" >&2
        exit 2
        ;;
esac

if [ ${#failed[@]} -ne 0 ]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
