{{! The deactivate lease hook for fish, a template rendered by src/env/hooks.c: lines}}
{{! starting with {{! are dropped; {{#each}} ... {{/each}} lines and {{#join|SEP|}}}}
{{! ... {{/join}} repeat per lease variable ({{VAR}}); {{NAME}} is a constant.}}
if set -q _GPUKEEPER_DEPTH
    if string match -qr '^[0-9]+$' -- "$_GPUKEEPER_DEPTH"; and test $_GPUKEEPER_DEPTH -gt 1
        set -gx _GPUKEEPER_DEPTH (math $_GPUKEEPER_DEPTH - 1)
    else
{{#each}}
        if set -q _GPUKEEPER_SAVED_{{VAR}}
            set -gx {{VAR}} $_GPUKEEPER_SAVED_{{VAR}}
            set -eg _GPUKEEPER_SAVED_{{VAR}}
        else
            set -eg {{VAR}}
        end
{{/each}}
        set -eg _GPUKEEPER_DEPTH
    end
end
