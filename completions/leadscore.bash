# bash completion for leadscore(1)                          -*- shell-script -*-
# Installed as share/bash-completion/completions/leadscore.  Completes the
# commands, each command's options (from its --help; tests/install_test.sh
# checks they agree), and the values of options that take a file, a
# directory or one of a few words.

_leadscore_commands="serve track score recommend profile ping stats model reload alias forget compact bench keygen import rescore kpis audience triggers train cluster gen"
_leadscore_audience_actions="add list rm export"
_leadscore_cluster_actions="init status move"

_leadscore_serve_settings="data model bind pull workers max-frame max-batch max-string max-customers dedupe-window history-days commit-max-events commit-window pull-max-events sync map-size map-max curve-secret allow admin log-level slow-ms drain-timeout metrics retrain-every client-hwm max-envelope scan-threads max-scans model-dirs model-max-bytes nats node cluster advertise triggers abandoned-cart-after trigger-cooldowns trigger-retention trigger-max audience-refresh"

# _leadscore_options CMD [ACTION]: prints "FLAGS|VALUE-OPTIONS" of CMD (of
# ACTION for audience and cluster; all of them without one).
_leadscore_options()
{
    local common="--connect --timeout --server-key --key"
    case $1 in
    serve)
        local s v=""
        for s in $_leadscore_serve_settings; do v+=" --$s"; done
        echo "--help --sample-config|--config$v" ;;
    track | ping | stats | model | reload | alias | forget)
        echo "--help --json|$common" ;;
    score) echo "--help --json --explain|$common --now" ;;
    recommend) echo "--help --json|$common --k --now" ;;
    profile) echo "--help --json|$common --now" ;;
    compact) echo "--help|--data --out" ;;
    keygen) echo "--help --force|--out" ;;
    bench)
        echo "--help --spawn --baseline --quiet|--connect --pull --data --customers --set --workload --batch --event-ids --mix --audiences --rounds --zipf --seed --clients --inflight --rate --duration --requests --warmup --timeout --pull-backlog --pull-wait --json --plot --server-key --key" ;;
    import)
        echo "--help --whitespace --no-header --allow-old --no-fold --no-sync --quiet|--data --connect --server-key --key --timeout --model --map-size --history-days --map --types --format --ts-format --delimiter --batch --max-errors" ;;
    rescore)
        echo "--help --segments-detail --quiet|--data --model --now --format --out --top --by --where --threads" ;;
    kpis) echo "--help --json|--data --from --to" ;;
    audience)
        case $2 in
        add) echo "--help --json|--data $common --model" ;;
        list | rm) echo "--help --json|--data $common" ;;
        export) echo "--help|--data $common --format --out" ;;
        *) echo "--help --json|--data $common --model --format --out" ;;
        esac ;;
    triggers) echo "--help --follow|--connect --data --from --limit --wait --timeout --server-key --key" ;;
    train)
        echo "--help --force --clv-only --json --quiet --whitespace --no-header --allow-old|--out --data --cutoff --horizon --lambda --base --name --version --map --types --format --ts-format --delimiter" ;;
    cluster)
        case $2 in
        init) echo "--help|--nats --cluster --partitions --nodes --replicas --max-age --wait" ;;
        status) echo "--help --json|--nats --cluster --wait" ;;
        move) echo "--help|--nats --cluster --wait" ;;
        *) echo "--help --json|--nats --cluster --partitions --nodes --replicas --max-age --wait" ;;
        esac ;;
    gen) echo "--help|--customers --days --seed --format --out --truth --end --start --cutoff --horizon" ;;
    esac
}

_leadscore_files()
{
    local dirs=$1 cur=$2
    if declare -F _filedir >/dev/null 2>&1; then
        if [[ $dirs == dirs ]]; then _filedir -d; else _filedir; fi
        return
    fi
    compopt -o filenames 2>/dev/null
    if [[ $dirs == dirs ]]; then
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
    else
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    fi
}

_leadscore_words()
{
    mapfile -t COMPREPLY < <(compgen -W "$1" -- "$2")
}

# _leadscore_value CMD OPTION CUR: completes the value of OPTION.
_leadscore_value()
{
    local cmd=$1 opt=$2 cur=$3
    case $opt in
    --data | --model-dirs) _leadscore_files dirs "$cur" ;;
    --out) if [[ $cmd == compact ]]; then _leadscore_files dirs "$cur"; else _leadscore_files files "$cur"; fi ;;
    --config | --model | --curve-secret | --allow | --admin | --server-key | --key | --truth | --plot | --base | --json)
        _leadscore_files files "$cur" ;;
    --format) _leadscore_words "csv jsonl" "$cur" ;;
    --ts-format) _leadscore_words "auto seconds millis iso" "$cur" ;;
    --workload) _leadscore_words "score score-batch track mixed recommend pull triggers import rescore" "$cur" ;;
    --by) _leadscore_words "score clv expected_purchases" "$cur" ;;
    --event-ids) _leadscore_words "sequential random" "$cur" ;;
    --log-level) _leadscore_words "error warn info debug" "$cur" ;;
    --sync | --triggers) _leadscore_words "on off" "$cur" ;;
    --delimiter) _leadscore_words ", tab" "$cur" ;;
    --where)
        compopt -o nospace 2>/dev/null
        _leadscore_words "tier= customer_type= phase= action= segment= known=" "$cur" ;;
    --set)
        compopt -o nospace 2>/dev/null
        local s w=""
        for s in $_leadscore_serve_settings; do w+=" $s="; done
        _leadscore_words "$w" "$cur" ;;
    *) COMPREPLY=() ;; # endpoints, numbers, times: nothing to offer
    esac
}

_leadscore()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=""
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
    COMPREPLY=()

    if ((COMP_CWORD == 1)); then
        _leadscore_words "$_leadscore_commands help version --help --version" "$cur"
        return 0
    fi
    local cmd=${COMP_WORDS[1]}
    if [[ $cmd == audience ]] && ((COMP_CWORD == 2)) && [[ $cur != -* ]]; then
        _leadscore_words "$_leadscore_audience_actions" "$cur"
        return 0
    fi
    if [[ $cmd == cluster ]] && ((COMP_CWORD == 2)) && [[ $cur != -* ]]; then
        _leadscore_words "$_leadscore_cluster_actions" "$cur"
        return 0
    fi
    local spec
    spec=$(_leadscore_options "$cmd" "${COMP_WORDS[2]}")
    [[ -n $spec ]] || return 0
    local flags=${spec%%|*} valopts=${spec#*|}

    # --opt=value: bash splits it at '=' (COMP_WORDBREAKS) into --opt, =, value
    if [[ $cur == = ]]; then
        _leadscore_value "$cmd" "$prev" ""
        return 0
    fi
    if [[ $prev == = ]] && ((COMP_CWORD >= 3)); then
        _leadscore_value "$cmd" "${COMP_WORDS[COMP_CWORD - 2]}" "$cur"
        return 0
    fi
    if [[ $cur == --*=* ]]; then # COMP_WORDBREAKS without '='
        local o=${cur%%=*}
        _leadscore_value "$cmd" "$o" "${cur#*=}"
        local i
        for i in "${!COMPREPLY[@]}"; do COMPREPLY[i]="$o=${COMPREPLY[i]}"; done
        return 0
    fi
    if [[ " $valopts " == *" $prev "* ]]; then
        _leadscore_value "$cmd" "$prev" "$cur"
        return 0
    fi
    if [[ $cur == -* ]]; then
        _leadscore_words "$flags $valopts" "$cur"
        return 0
    fi
    case $cmd in
    import | train | reload) _leadscore_files files "$cur" ;;
    esac
    return 0
}

complete -F _leadscore leadscore
