{{! The activate lease hook for sh, a template rendered by src/env/hooks.c: lines}}
{{! starting with {{! are dropped; {{#each}} ... {{/each}} lines and {{#join|SEP|}}}}
{{! ... {{/join}} repeat per lease variable ({{VAR}}); {{NAME}} is a constant.}}
{{! Scripts that run `set -e` (and conda's activation in them) source this hook,}}
{{! so no command in it may fail where that would end the shell: the command}}
{{! substitution and the time stamp (an env on a read-only file system) run as}}
{{! if-conditions or with `|| :`.}}
if [ -n "${CONDA_PREFIX:-}" ]; then
    { date +%s >"$CONDA_PREFIX/{{LAST_ACTIVATED_FILE}}"; } 2>/dev/null || :
fi
if command -v gpukeeper >/dev/null 2>&1; then
    if _gpukeeper_out=$(gpukeeper lease env 2>/dev/null); then
        _gpukeeper_status=0
    else
        _gpukeeper_status=$?
    fi
{{#each}}
    _gpukeeper_new_{{VAR}}=
{{/each}}
    if [ "$_gpukeeper_status" -eq 0 ]; then
        while IFS= read -r _gpukeeper_line; do
            _gpukeeper_value=${_gpukeeper_line#*=\'}
            _gpukeeper_value=${_gpukeeper_value%\'}
            case $_gpukeeper_value in *\'*) continue ;; esac
            case $_gpukeeper_line in
{{#each}}
            "export {{VAR}}='"*"'") _gpukeeper_new_{{VAR}}=$_gpukeeper_value ;;
{{/each}}
            esac
        done <<_GPUKEEPER_EOF
$_gpukeeper_out
_GPUKEEPER_EOF
    fi
    if [ -n "${_GPUKEEPER_DEPTH+x}" ]; then
        case $_GPUKEEPER_DEPTH in ''|*[!0-9]*) _GPUKEEPER_DEPTH=0 ;; esac
    fi
    if{{#join| &&|}} [ -n "$_gpukeeper_new_{{VAR}}" ]{{/join}}; then
        if [ -z "${_GPUKEEPER_DEPTH+x}" ]; then
{{#each}}
            unset _GPUKEEPER_SAVED_{{VAR}}
            if [ -n "${{{VAR}}+x}" ]; then
                export _GPUKEEPER_SAVED_{{VAR}}="${{VAR}}"
            fi
{{/each}}
            _GPUKEEPER_DEPTH=0
        fi
        export _GPUKEEPER_DEPTH=$((_GPUKEEPER_DEPTH + 1))
{{#each}}
        export {{VAR}}="$_gpukeeper_new_{{VAR}}"
{{/each}}
    else
        if [ -n "${_GPUKEEPER_DEPTH+x}" ]; then
            export _GPUKEEPER_DEPTH=$((_GPUKEEPER_DEPTH + 1))
        fi
        if [ "$_gpukeeper_status" -eq 0 ]; then
            echo "{{UNUSABLE_MESSAGE}}" >&2
        elif [ "$_gpukeeper_status" -eq {{EXIT_UNREACHABLE}} ]; then
            echo "{{UNREACHABLE_MESSAGE}}" >&2
        else
            echo "{{NO_LEASE_MESSAGE}}" >&2
        fi
    fi
    unset _gpukeeper_out _gpukeeper_status _gpukeeper_line _gpukeeper_value
{{#each}}
    unset _gpukeeper_new_{{VAR}}
{{/each}}
fi
