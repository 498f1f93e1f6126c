{{! The deactivate lease hook for sh, a template rendered by src/env/hooks.c: lines}}
{{! starting with {{! are dropped; {{#each}} ... {{/each}} lines and {{#join|SEP|}}}}
{{! ... {{/join}} repeat per lease variable ({{VAR}}); {{NAME}} is a constant.}}
if [ -n "${_GPUKEEPER_DEPTH+x}" ]; then
    case $_GPUKEEPER_DEPTH in ''|*[!0-9]*) _GPUKEEPER_DEPTH=0 ;; esac
    if [ "$_GPUKEEPER_DEPTH" -gt 1 ]; then
        export _GPUKEEPER_DEPTH=$((_GPUKEEPER_DEPTH - 1))
    else
{{#each}}
        if [ -n "${_GPUKEEPER_SAVED_{{VAR}}+x}" ]; then
            export {{VAR}}="$_GPUKEEPER_SAVED_{{VAR}}"
            unset _GPUKEEPER_SAVED_{{VAR}}
        else
            unset {{VAR}}
        fi
{{/each}}
        unset _GPUKEEPER_DEPTH
    fi
fi
