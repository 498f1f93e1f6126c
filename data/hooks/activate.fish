{{! The activate lease hook for fish, a template rendered by src/env/hooks.c: lines}}
{{! starting with {{! are dropped; {{#each}} ... {{/each}} lines and {{#join|SEP|}}}}
{{! ... {{/join}} repeat per lease variable ({{VAR}}); {{NAME}} is a constant.}}
{{! fish: a failed redirection is reported by fish itself whatever 2> says, so}}
{{! the time is written under sh -c as in csh. `set -l` inside the if block}}
{{! keeps the helpers local to it.}}
if set -q CONDA_PREFIX
    sh -c 'exec 2>/dev/null; date +%s >"$1/{{LAST_ACTIVATED_FILE}}" || :' sh "$CONDA_PREFIX"
end
if command -q gpukeeper
    set -l _gpukeeper_out (gpukeeper lease env 2>/dev/null)
    set -l _gpukeeper_status $status
{{#each}}
    set -l _gpukeeper_new_{{VAR}} ''
{{/each}}
    if test $_gpukeeper_status -eq 0
        for _gpukeeper_line in $_gpukeeper_out
{{#each}}
            string match -qr '^export {{VAR}}=\'[^\']+\'$' -- $_gpukeeper_line
            and set _gpukeeper_new_{{VAR}} (string replace -r '^export {{VAR}}=\'([^\']+)\'$' '$1' -- $_gpukeeper_line)
{{/each}}
        end
    end
    if set -q _GPUKEEPER_DEPTH
        string match -qr '^[0-9]+$' -- "$_GPUKEEPER_DEPTH"
        or set -gx _GPUKEEPER_DEPTH 0
    end
    if{{#join|; and|}} test -n "$_gpukeeper_new_{{VAR}}"{{/join}}
        if not set -q _GPUKEEPER_DEPTH
{{#each}}
            set -eg _GPUKEEPER_SAVED_{{VAR}}
            set -q {{VAR}}
            and set -gx _GPUKEEPER_SAVED_{{VAR}} ${{VAR}}
{{/each}}
            set -gx _GPUKEEPER_DEPTH 0
        end
        set -gx _GPUKEEPER_DEPTH (math $_GPUKEEPER_DEPTH + 1)
{{#each}}
        set -gx {{VAR}} $_gpukeeper_new_{{VAR}}
{{/each}}
    else
        if set -q _GPUKEEPER_DEPTH
            set -gx _GPUKEEPER_DEPTH (math $_GPUKEEPER_DEPTH + 1)
        end
        if test $_gpukeeper_status -eq 0
            echo "{{UNUSABLE_MESSAGE}}" >&2
        else if test $_gpukeeper_status -eq {{EXIT_UNREACHABLE}}
            echo "{{UNREACHABLE_MESSAGE}}" >&2
        else
            echo "{{NO_LEASE_MESSAGE}}" >&2
        end
    end
end
