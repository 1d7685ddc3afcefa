# bash completion for ann-build, ann-query, ann-inspect and ann-serve  -*- sh -*-
#
# Installed once per tool as share/bash-completion/completions/<tool>
# (bash-completion loads a command's file on first use); source it by hand
# where bash-completion is not installed. Works without bash-completion's
# helpers. The options are read from the tool's own --help, so they never
# fall behind it; the values of options that take a fixed set are listed here.

_annb_options()
{
    # The options --help lists: the leading words of its indented lines that
    # start with '-' ("  -o, --output BUNDLE   ..." gives -o and --output).
    "$1" --help 2>/dev/null | awk '/^ +-/ {
        for (i = 1; i <= NF; i++) {
            w = $i; sub(/,$/, "", w)
            if (w !~ /^--?[a-zA-Z0-9][a-zA-Z0-9-]*$/) break
            print w
        } }' | sort -u
}

_annb_files()
{ # _annb_files [GLOB-EXTENSION]: file names, and directories to go on into
    local IFS=$'\n' cur=$1 ext=${2-}
    compopt -o filenames 2>/dev/null
    if [ -n "$ext" ]; then
        COMPREPLY=($(compgen -d -- "$cur") $(compgen -f -X "!*.$ext" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}

_annb()
{
    local cmd=${COMP_WORDS[0]##*/} cur=${COMP_WORDS[COMP_CWORD]} prev=
    [ "$COMP_CWORD" -gt 0 ] && prev=${COMP_WORDS[COMP_CWORD - 1]}
    COMPREPLY=()

    case $prev in
    -m | --metric)
        COMPREPLY=($(compgen -W 'ip cosine l2' -- "$cur"))
        return
        ;;
    -i | --index)
        COMPREPLY=($(compgen -W 'flat auto graph ivf hnsw ivfpq' -- "$cur"))
        return
        ;;
    -f | --format)
        if [ "$cmd" = ann-query ]; then
            COMPREPLY=($(compgen -W 'table tsv json resp' -- "$cur"))
        fi
        return
        ;;
    -o | --output)
        _annb_files "$cur" annb
        return
        ;;
    --dispatch)
        COMPREPLY=($(compgen -W 'inline queue' -- "$cur"))
        return
        ;;
    --listen | --max-k | --queue | --timeout-ms | --drain-ms | --recall-sample)
        return # a value to type
        ;;
    --access-log)
        _annb_files "$cur"
        return
        ;;
    -k | -t | --threads | --target-recall | --recall-k | --tune-queries | --max-memory | --shard | \
        --expect-sha256 | --user | --item | --vec | --similar-users | --users-for-item | --exclude | \
        --genre | --nprobe | --ef-search | --key-prefix | --ttl | --max-request-bytes | \
        --id-column | --vector-column | --user-id-column | --user-vector-column)
        return # a value to type: nothing to offer
        ;;
    -u | --users | --interactions | --tune-vectors | --user-vec | --batch | --batch-users | \
        --exclude-seen | --recall | --sha256)
        _annb_files "$cur"
        return
        ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_annb_options "${COMP_WORDS[0]}")" -- "$cur"))
        return
    fi
    case $cmd in
    ann-build) _annb_files "$cur" ;;       # ITEMS and CATALOG: any file
    *) _annb_files "$cur" annb ;;          # BUNDLE
    esac
}

complete -F _annb ann-build ann-query ann-inspect ann-serve
