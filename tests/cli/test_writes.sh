#!/bin/bash
# test_writes.sh - what ann-build may replace, and what a signal leaves:
# outputs that are not regular files or are inputs are refused before any
# work and left as they were; SIGKILL, SIGTERM and SIGINT sent while the
# bundle is being written leave the target directory as it was, byte for
# byte, on the O_TMPFILE path and (SIGTERM, SIGINT) on the named-temporary
# fallback; --expect-sha256 keeps or refuses; bundles that are FIFOs are
# refused at once by ann-query and ann-inspect.
#
#   bash test_writes.sh ANN-BUILD ANN-QUERY ANN-INSPECT STOP-WRITER.so
#
# STOP-WRITER.so (annb-test-stop-writer.c, LD_PRELOAD) stops ann-build
# right after its first write into the bundle, so each signal arrives at a
# known point of the write, not after a guessed delay.

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

need_args 4 "ANN-BUILD ANN-QUERY ANN-INSPECT STOP-WRITER.so" "$@"
BUILD=$1 QUERY=$2 INSPECT=$3 SHIM=$4
DATA=$HERE/../data/cli
export LC_ALL=C
W=$TMP/work
mkdir -p "$W"
# ASan wants its runtime first in the library list; the preloaded stopper is.
ASAN_PRELOAD=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0

# names_in DIR: the entries of DIR, one line, sorted.
names_in() { (cd "$1" && ls -A | sort | tr '\n' ' '); }
same_bytes() { cmp -s "$1" "$2"; }

# ------------------------------------------------ outputs that are refused
cp "$DATA/items.csv" "$W/items.csv"
cp "$DATA/movies.dat" "$W/movies.dat"
cp "$W/items.csv" "$W/items.orig"
cp "$W/movies.dat" "$W/movies.orig"
ln "$W/items.csv" "$W/items.hardlink"

# -o /dev/null: refused, and /dev/null is still the character device.
run "$BUILD" "$W/items.csv" -o /dev/null
expect_status 3
expect_stderr_contains "ann-build: /dev/null: is a character device, not a regular file"
expect_true "/dev/null is still a character device" test -c /dev/null
if [ ! -c /dev/null ] && [ "$(id -u)" = 0 ]; then # a regression must not break the machine
    rm -f /dev/null && mknod -m 666 /dev/null c 1 3
fi

# -o a FIFO: refused without blocking (no reader ever opens it).
mkfifo "$W/fifo"
run timeout 60 "$BUILD" "$W/items.csv" -o "$W/fifo"
expect_status 3
expect_stderr_contains "$W/fifo: is a FIFO, not a regular file"
expect_true "the FIFO is still a FIFO" test -p "$W/fifo"

# -o a directory, and a symbolic link (to a file or dangling).
mkdir "$W/dir"
run "$BUILD" "$W/items.csv" -o "$W/dir"
expect_status 3
expect_stderr_contains "$W/dir: is a directory, not a regular file"
expect_true "the directory is still empty" test -z "$(names_in "$W/dir")"
cp "$W/items.orig" "$W/target.annb"
ln -s target.annb "$W/link.annb"
run "$BUILD" "$W/items.csv" -o "$W/link.annb"
expect_status 3
expect_stderr_contains "$W/link.annb: is a symbolic link"
expect_true "the link is still a link" test -L "$W/link.annb"
expect_true "the file it names is unchanged" same_bytes "$W/target.annb" "$W/items.orig"
ln -s nowhere.annb "$W/dangling.annb"
run "$BUILD" "$W/items.csv" -o "$W/dangling.annb"
expect_status 3
expect_true "nothing was made where the dangling link points" test ! -e "$W/nowhere.annb"

# -o an input: by its own path, with ./, through a hard link, the catalog,
# the users file; refused before reading anything (exit 2), inputs intact.
for out in "$W/items.csv" "$W/./items.csv" "$W/items.hardlink" "$W/movies.dat"; do
    run "$BUILD" "$W/items.csv" "$W/movies.dat" -o "$out"
    expect_status 2
    expect_stderr_matches "ann-build: .*: is the same file as the input .*(items.csv|movies.dat) \(same device and inode\)"
done
(cd "$W" && run "$BUILD" items.csv -o ./items.csv && expect_status 2)
run "$BUILD" "$W/items.csv" -o "$W/users.csv" --users "$W/items.hardlink"
expect_status 0 # no users.csv yet: nothing to protect, the build goes on...
cp "$W/items.orig" "$W/users.csv"
run "$BUILD" "$W/items.csv" -o "$W/users.csv" --users "$W/users.csv"
expect_status 2 # ...once it exists, it is an input
expect_stderr_contains "is the same file as the input $W/users.csv"
expect_true "items.csv unchanged" same_bytes "$W/items.csv" "$W/items.orig"
expect_true "movies.dat unchanged" same_bytes "$W/movies.dat" "$W/movies.orig"
expect_true "users.csv unchanged" same_bytes "$W/users.csv" "$W/items.orig"
expect_true "no file left beside the inputs" \
    test "$(names_in "$W")" = "dangling.annb dir fifo items.csv items.hardlink items.orig link.annb movies.dat movies.orig target.annb users.csv "

# A missing directory is reported before the build, not after it.
run "$BUILD" "$W/items.csv" -o "$W/no/such/dir/x.annb"
expect_status 3
expect_stderr_contains "$W/no/such/dir/x.annb: its directory $W/no/such/dir: No such file or directory"

# ------------------------------------------------ --expect-sha256
X=$W/expect
mkdir "$X"
run "$BUILD" "$W/items.csv" -o "$X/a.annb" -q
expect_status 0
want=$(sha256sum "$X/a.annb" | cut -c1-64)
run "$BUILD" "$W/items.csv" -o "$X/b.annb" --expect-sha256 "$want"
expect_status 0
expect_stderr_contains "SHA-256 as expected"
expect_true "the rebuild matches" same_bytes "$X/a.annb" "$X/b.annb"
# A mismatch over an existing file: exit 1, both hashes, file untouched.
other=$(sha256sum "$W/items.orig" | cut -c1-64)
run "$BUILD" "$W/items.csv" -o "$X/a.annb" --expect-sha256 "$other"
expect_status 1
expect_stderr_contains "$X/a.annb: SHA-256 mismatch: built $want, expected $other"
expect_true "a.annb unchanged" test "$(sha256sum "$X/a.annb" | cut -c1-64)" = "$want"
# ...and on the named-temporary fallback, and where no file was.
run env LD_PRELOAD="$SHIM" ANNB_SHIM_NO_TMPFILE=1 ASAN_OPTIONS="$ASAN_PRELOAD" \
    "$BUILD" "$W/items.csv" -o "$X/c.annb" --expect-sha256 "$other"
expect_status 1
expect_stderr_contains "SHA-256 mismatch: built $want"
expect_true "no file left after the mismatches" test "$(names_in "$X")" = "a.annb b.annb "

# ------------------------------------------------ signals while writing
# A large enough input that the bundle takes many writes (a few MB).
gen_vectors 20000 32 7 3 1 >"$W/big.csv"
S=$W/signals
mkdir "$S"
run "$BUILD" "$W/items.csv" -o "$S/old.annb" -q
expect_status 0

# wait_stopped PID: until the process is stopped (state T); 1 if it ended.
wait_stopped() {
    local state
    while :; do
        state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
        [ "$state" = T ] && return 0
        [ -z "$state" ] || [ "$state" = Z ] && return 1
        sleep 0.05
    done
}

# signal_case SIG PATH(tmpfile|named): ann-build over an existing bundle,
# stopped after its first write into the new file, gets SIG (then SIGCONT).
# It must die of SIG, leaving the directory exactly as before. SIG "none":
# only SIGCONT, the build must finish and replace the target.
signal_case() {
    local sig=$1 path=$2 d="$S/$1-$2" notmp=0 pid status
    [ "$path" = named ] && notmp=1
    mkdir "$d"
    cp "$S/old.annb" "$d/live.annb"
    LAST_CMD="ann-build big.csv -o $d/live.annb, $sig while writing ($path)"
    env --default-signal=INT,TERM,HUP LD_PRELOAD="$SHIM" ANNB_SHIM_STOP_DIR="$d" \
        ANNB_SHIM_NO_TMPFILE=$notmp ASAN_OPTIONS="$ASAN_PRELOAD" \
        "$BUILD" "$W/big.csv" -o "$d/live.annb" >"$TMP/stdout" 2>"$TMP/stderr" &
    pid=$!
    if ! wait_stopped "$pid"; then
        wait "$pid"
        STATUS=$?
        fail "ann-build never stopped in its write ($sig, $path)"
        return
    fi
    # Mid-write: the unnamed file is open but has no name; the fallback's
    # temporary name is there (so the test sees the window it is about).
    if [ "$path" = named ]; then
        check "$path: a temporary file exists while writing" \
            test "$(cd "$d" && ls -A | grep -c '^live\.annb\.tmp\.')" -eq 1
    else
        check "$path: no new name while writing" test "$(names_in "$d")" = "live.annb "
        check "$path: an unnamed file in $d is open" \
            sh -c "ls -l /proc/$pid/fd | grep -q '$d/#.* (deleted)'"
    fi
    [ "$sig" != none ] && kill -s "$sig" "$pid"
    [ "$sig" != KILL ] && kill -s CONT "$pid"
    wait "$pid"
    STATUS=$?
    if [ "$sig" = none ]; then
        expect_status 0
        check "$path: the finished build replaced the target" \
            sh -c "! cmp -s '$d/live.annb' '$S/old.annb'"
        run "$INSPECT" "$d/live.annb" --verify
        expect_status 0
    else
        check "$path: died of SIG$sig (status $STATUS)" \
            test "$STATUS" -eq $((128 + $(kill -l "$sig")))
        check "$path: the target is unchanged after SIG$sig" same_bytes "$d/live.annb" "$S/old.annb"
    fi
    check "$path: nothing else in the directory after SIG$sig" test "$(names_in "$d")" = "live.annb "
}

for sig in KILL TERM INT HUP none; do signal_case "$sig" tmpfile; done
# The fallback: a named file, removed by ann-build's handlers (SIGKILL
# cannot be handled: there the partial file stays, as documented).
for sig in TERM INT HUP none; do signal_case "$sig" named; done

# A signal ignored at start (nohup) stays ignored: the build completes.
d=$S/ignored
mkdir "$d"
cp "$S/old.annb" "$d/live.annb"
env --ignore-signal=TERM LD_PRELOAD="$SHIM" ANNB_SHIM_STOP_DIR="$d" \
    ASAN_OPTIONS="$ASAN_PRELOAD" "$BUILD" "$W/big.csv" -o "$d/live.annb" -q &
pid=$!
if wait_stopped "$pid"; then
    kill -s TERM "$pid"
    kill -s CONT "$pid"
fi
wait "$pid"
STATUS=$?
LAST_CMD="ann-build with SIGTERM ignored"
expect_status 0
expect_true "the ignored SIGTERM did not stop the build" test "$(names_in "$d")" = "live.annb "

# ------------------------------------------------ bundles that are FIFOs
# Nothing ever writes into the FIFO: an open that blocked would hang here.
run timeout 60 "$QUERY" "$W/fifo" --item 1 -k 3
expect_status 3
expect_stderr_contains "$W/fifo: not a regular file"
run timeout 60 "$INSPECT" "$W/fifo"
expect_status 3
expect_stderr_contains "$W/fifo: not a regular file"
run timeout 60 "$INSPECT" "$W/fifo" --verify
expect_status 3
run timeout 60 "$INSPECT" --sha256 "$W/fifo"
expect_status 3
expect_stderr_contains "$W/fifo: not a regular file"
run timeout 60 "$INSPECT" /dev/zero
expect_status 3
expect_stderr_contains "/dev/zero: not a regular file"

finish
