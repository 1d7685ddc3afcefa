#!/bin/bash
# test_install.sh - annb as its users get it. `cmake --install` into a prefix
# under the build directory, then:
#
#   - exactly the public files are installed (no internal archives), annb.pc
#     names the prefix installed into, with Libs.private;
#   - the installed tools run from the prefix through their RUNPATH
#     ($ORIGIN/../lib, no LD_LIBRARY_PATH) and build, verify and query a bundle;
#   - the man pages (gzip-compressed) render without warnings and name every
#     option of --help; the bash completion offers --help's options and the
#     metric names;
#   - a program outside the tree (examples/search_example.c, the C example)
#     is built four ways: find_package(annb) with annb::annb and with
#     annb::annb_static (a C-only CMake project), `pkg-config --cflags --libs
#     annb`, and `pkg-config --static --libs annb` against a second install
#     whose libannb.so is removed (so the link can only take libannb.a). Each
#     opens the bundle the installed ann-build wrote and must print
#     tests/install/expected-search.txt, whose IDs are also what the installed
#     ann-query --item answers.
#
#   - the Python package (when PYDIR is given) imports from the prefix with
#     PYTHONPATH=PREFIX/PYDIR alone, finds libannb.so through its RUNPATH and
#     answers as the C program does.
#
#   bash test_install.sh BUILD-DIR CMAKE C-COMPILER LIBDIR [PYDIR PYTHON]
#
# LIBDIR is CMAKE_INSTALL_LIBDIR (lib, or lib/x86_64-linux-gnu for /usr).
# Needs pkg-config, readelf and man (Debian packages pkg-config, binutils,
# man-db; `make deps` installs them). Everything is written under
# BUILD-DIR/install-test, removed when every check passed.

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../cli/lib.sh"

[ $# -eq 6 ] || need_args 4 "BUILD-DIR CMAKE C-COMPILER LIBDIR [PYDIR PYTHON]" "$@"
BUILD=$(cd "$1" && pwd) CMAKE=$2 CC=$3 LIBDIR=$4 PYDIR=${5-} PYTHON=${6-}
SRC=$(cd "$HERE/../.." && pwd)
DATA=$SRC/tests/data/cli
EXPECTED=$HERE/expected-search.txt
CONSUMER=$SRC/examples/search_example.c
export LC_ALL=C
unset LD_LIBRARY_PATH PKG_CONFIG_PATH PKG_CONFIG_LIBDIR CMAKE_PREFIX_PATH

# the version the tools must print: annb.h's, so a release changes one place
VERSION=$(sed -n 's/^#define ANNB_VERSION_STRING "\(.*\)"$/\1/p' "$SRC/lib/annb.h")
for tool in pkg-config readelf man; do
    if ! command -v $tool >/dev/null; then
        echo "test_install.sh: $tool not found: install pkg-config, binutils and man-db (make deps)" >&2
        exit 1
    fi
done

W=$BUILD/install-test
rm -rf "$W"
mkdir -p "$W"
P=$W/prefix

# ---------------------------------------------------------------- install
run "$CMAKE" --install "$BUILD" --prefix "$P"
expect_status 0

# Exactly these files (and libannb.so's two symbolic links).
(cd "$P" && find . \( -type f -o -type l \) | sed 's|^\./||' | sort) >"$W/files"
sort >"$W/files.expected" <<EOF
bin/ann-build
bin/ann-inspect
bin/ann-query
bin/ann-serve
include/annb.h
$LIBDIR/cmake/annb/annbConfig.cmake
$LIBDIR/cmake/annb/annbConfigVersion.cmake
$LIBDIR/cmake/annb/annbTargets-$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt" | tr A-Z a-z).cmake
$LIBDIR/cmake/annb/annbTargets.cmake
$LIBDIR/libannb.a
$LIBDIR/libannb.so
$LIBDIR/libannb.so.0
$LIBDIR/libannb.so.0.4.0
$LIBDIR/pkgconfig/annb.pc
share/bash-completion/completions/ann-build
share/bash-completion/completions/ann-inspect
share/bash-completion/completions/ann-query
share/bash-completion/completions/ann-serve
share/doc/annb/LICENSE
share/doc/annb/README.md
share/man/man1/ann-build.1.gz
share/man/man1/ann-inspect.1.gz
share/man/man1/ann-query.1.gz
share/man/man1/ann-serve.1.gz
EOF
if [ -n "$PYDIR" ]; then
    suffix=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
    for f in __init__.py __init__.pyi dask.py py.typed _annb$suffix; do
        echo "$PYDIR/annb/$f" >>"$W/files.expected"
    done
    sort -o "$W/files.expected" "$W/files.expected"
fi
if cmp -s "$W/files.expected" "$W/files"; then pass; else
    fail "installed files differ from the public set:
$(diff "$W/files.expected" "$W/files")"
fi
check "LICENSE is MIT, the annb authors" grep -q 'Copyright (c) .* the annb authors' "$P/share/doc/annb/LICENSE"

# ---------------------------------------------------------------- annb.pc
# PKG_CONFIG_LIBDIR: only the prefix's .pc files, so annb.pc must need no
# other module (a program using libannb.so needs no -dev package but annb's).
export PKG_CONFIG_LIBDIR=$P/$LIBDIR/pkgconfig
check "annb.pc: prefix is the one installed into" grep -qx "prefix=$P" "$P/$LIBDIR/pkgconfig/annb.pc"
run pkg-config --cflags --libs annb
expect_status 0
expect_stdout_contains "-I$P/include"
expect_stdout_contains "-L$P/$LIBDIR -lannb"
check "pkg-config --libs: no private libraries" test -z "$(grep -oE -- '-l(faiss|gomp|zstd)' "$TMP/stdout")"
run pkg-config --static --libs annb
expect_status 0
for lib in faiss gomp stdc++ zstd z cjson csv xxhash m dl; do
    expect_stdout_contains " -l$lib "
done
expect_stdout_contains "-Wl,--undefined=cblas_sgemm"
run pkg-config --modversion annb
expect_stdout_contains "0.4.0"

# ---------------------------------------------------------------- installed tools
for tool in ann-build ann-query ann-inspect ann-serve; do
    run readelf -d "$P/bin/$tool"
    expect_stdout_matches "\(RUNPATH\) +Library runpath: \[\\\$ORIGIN/\.\./$LIBDIR\]"
    run ldd "$P/bin/$tool"
    lib=$(sed -n 's/^[[:space:]]*libannb\.so\.0 => \(.*\) (0x.*/\1/p' "$TMP/stdout")
    check "$tool loads the prefix's libannb.so.0 (got '$lib')" \
        test -n "$lib" -a "$(readlink -f "$lib")" = "$(readlink -f "$P/$LIBDIR/libannb.so.0")"
    run "$P/bin/$tool" --version
    expect_status 0
    expect_stdout_matches "^annb ${VERSION//./\\.} \\(format [0-9]+\\.[0-9]+, faiss [0-9.]+, zstd [0-9.]+\\)\$"
done
B=$W/cli.annb
run "$P/bin/ann-build" "$DATA/items.csv" "$DATA/movies.dat" -o "$B"
expect_status 0
expect_stderr_contains "12 vectors of dimension 4"
run "$P/bin/ann-inspect" "$B" --verify
expect_status 0
expect_stdout_contains "verify      ok"
run "$P/bin/ann-query" "$B" --item 2571 -k 5 --format tsv
expect_status 0
awk -F '\t' 'NR > 1 { print $1, $2 }' "$TMP/stdout" >"$W/ann-query.ids"
awk '$1 ~ /^[0-9]+$/ { print $1, $2 }' "$EXPECTED" >"$W/expected.ids"
check "expected-search.txt ranks the IDs ann-query --item ranks" cmp -s "$W/expected.ids" "$W/ann-query.ids"

# ---------------------------------------------------------------- man pages, completion
for tool in ann-build ann-query ann-inspect ann-serve; do
    page=$P/share/man/man1/$tool.1.gz
    run env MANWIDTH=200 man --warnings -l "$page"
    expect_status 0
    expect_stderr_empty
    expect_stdout_matches "^NAME$"
    expect_stdout_matches "^ +$tool - "
    cp "$TMP/stdout" "$W/$tool.txt"
    # Every option --help lists (as the completion reads them) is documented.
    for opt in $(bash -c '. "$1"; _annb_options "$2"' - "$P/share/bash-completion/completions/$tool" "$P/bin/$tool"); do
        check "$tool.1 documents $opt" grep -qE -- "(^|[^a-zA-Z0-9-])$opt([^a-zA-Z0-9-]|$)" "$W/$tool.txt"
    done
done
# The completion, sourced as bash-completion would, the tools on PATH.
complete_words() { # complete_words WORD... : the completions of the last word
    PATH=$P/bin:$PATH bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _annb
        printf "%s\n" "${COMPREPLY[@]}"' - "$P/share/bash-completion/completions/$1" "$@"
}
check "completion: ann-query --for -> --format" test "$(complete_words ann-query x.annb --for)" = --format
check "completion: ann-build -m -> ip cosine l2" test "$(complete_words ann-build x.csv -m '' | tr '\n' ' ')" = "ip cosine l2 "
check "completion: ann-inspect --ver -> --verbose --verify --version" \
    test "$(complete_words ann-inspect x.annb --ver | tr '\n' ' ')" = "--verbose --verify --version "
check "completion: ann-query -f -> table tsv json resp" \
    test "$(complete_words ann-query x.annb -f '' | tr '\n' ' ')" = "table tsv json resp "

# ---------------------------------------------------------------- consumers
# consumer NAME: runs it on the bundle, compares with the expected answer.
consumer_answers() {
    run "$1" "$B" 2571 5
    expect_status 0
    expect_stderr_empty
    expect_stdout_equals "$EXPECTED"
}
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }

for target in annb annb_static; do
    D=$W/cmake-$target
    run "$CMAKE" -S "$HERE/consumer" -B "$D" -DCMAKE_C_COMPILER="$CC" -DCMAKE_PREFIX_PATH="$P" \
        -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DANNB_TARGET=annb::$target -DANNB_CONSUMER_SOURCE="$CONSUMER"
    expect_status 0
    run "$CMAKE" --build "$D"
    expect_status 0
    check "find_package(annb): annb_DIR is the prefix's" \
        grep -qx "annb_DIR:PATH=$P/$LIBDIR/cmake/annb" "$D/CMakeCache.txt"
    if [ $target = annb ]; then
        check "annb::annb: the program needs libannb.so.0" grep -qx libannb.so.0 <(needed "$D/search")
    else
        check "annb::annb_static: the program does not need libannb.so" test -z "$(needed "$D/search" | grep libannb)"
    fi
    consumer_answers "$D/search"
done

# pkg-config, shared: libannb.so.0 found through LD_LIBRARY_PATH (a system
# install has it in the loader's path).
run "$CC" -o "$W/pc-shared" "$CONSUMER" $(pkg-config --cflags --libs annb)
expect_status 0
check "pkg-config: the program needs libannb.so.0" grep -qx libannb.so.0 <(needed "$W/pc-shared")
LD_LIBRARY_PATH=$P/$LIBDIR consumer_answers "$W/pc-shared"

# pkg-config --static, against an install that has only libannb.a (with
# both, the linker takes libannb.so for -lannb; `-l:libannb.a` picks the
# archive by name).
S=$W/static-prefix
run "$CMAKE" --install "$BUILD" --prefix "$S"
expect_status 0
rm -f "$S/$LIBDIR"/libannb.so*
export PKG_CONFIG_LIBDIR=$S/$LIBDIR/pkgconfig
run "$CC" -o "$W/pc-static" "$CONSUMER" $(pkg-config --cflags annb) $(pkg-config --static --libs annb)
expect_status 0
check "pkg-config --static: the program does not need libannb.so" test -z "$(needed "$W/pc-static" | grep libannb)"
consumer_answers "$W/pc-static"

# ---------------------------------------------------------------- Python
if [ -n "$PYDIR" ]; then
    run env -u LD_LIBRARY_PATH PYTHONPATH="$P/$PYDIR" "$PYTHON" -c '
import sys, annb
assert annb.__file__.startswith(sys.argv[1]), annb.__file__
with annb.open(sys.argv[2]) as b:
    ids, scores = b.similar_items(2571, 5)
    for r, (i, s) in enumerate(zip(ids[0], scores[0]), 1):
        print("%4d %11d %11.4f  %s" % (r, i, s, b.title(int(i)) or "(no title)"))' "$P/$PYDIR" "$B"
    expect_status 0
    expect_stderr_empty
    # the ranks, IDs, scores and titles of the C program's answer
    sed -n 's/ \[[^]]*\]$//p' "$EXPECTED" | tail -n +3 >"$W/expected-python.txt"
    expect_stdout_equals "$W/expected-python.txt"
fi

[ "$FAILED" -eq 0 ] && rm -rf "$W"
finish
