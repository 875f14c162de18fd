# bash completion for jitctl                                    -*- shell-script -*-

_jitctl()
{
    local cur prev words cword
    _init_completion || return

    local cmds="request list rules requests check status grant approve deny revoke extend audit sessions setup replay help"
    local i cmd=""
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
        --socket) ((i++)) ;;
        -*) ;;
        *) cmd=${words[i]}; break ;;
        esac
    done

    case $prev in
    --socket) _filedir; return ;;
    --plugin | --module) _filedir so; return ;;
    --for) COMPREPLY=($(compgen -W "15m 30m 1h 2h 4h 8h" -- "$cur")); return ;;
    --runas | --user) COMPREPLY=($(compgen -u -- "$cur")); return ;;
    --exempt-group | --breakglass-group | --runas-group) COMPREPLY=($(compgen -g -- "$cur")); return ;;
    --service) COMPREPLY=($(compgen -W "$(ls /etc/pam.d 2>/dev/null)" -- "$cur")); return ;;
    --tz) COMPREPLY=($(compgen -W "UTC $(cd /usr/share/zoneinfo 2>/dev/null && find . -type f -name '[A-Z]*' | sed 's|^\./||' | grep / )" -- "$cur")); return ;;
    --cmd | --reason | --window | --start | --since) return ;;
    esac

    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "$cmds --socket --help" -- "$cur"))
        return
    fi

    local opts=""
    case $cmd in
    request) opts="--cmd --for --login --runas --runas-group --window --tz --reason --json" ;;
    grant) opts="--cmd --for --login --runas --runas-group --window --tz --start --reason --end-at-window-close --json" ;;
    approve) opts="--for --reason --json" ;;
    deny | revoke) opts="--reason" ;;
    extend) opts="--for" ;;
    list | requests) opts="--all --user --json" ;;
    rules) opts="--user --json" ;;
    check) opts="--login --service --runas --runas-group" ;;
    status) opts="--json" ;;
    audit) opts="--since --verify --json" ;;
    sessions) opts="--user --since --open --json" ;;
    setup)
        if [[ ${words[cword - 1]} == setup ]]; then
            COMPREPLY=($(compgen -W "sudo pam" -- "$cur"))
            return
        fi
        opts="--enable --disable --dry-run --plugin --breakglass-group --service --exempt-group --module"
        ;;
    esac
    if [[ $cmd == grant || $cmd == check ]] && [[ $cur != -* ]]; then
        COMPREPLY=($(compgen -u -- "$cur"))
        return
    fi
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
} &&
    complete -F _jitctl jitctl
