{{! The deactivate lease hook for csh, a template rendered by src/env/hooks.c: lines}}
{{! starting with {{! are dropped; {{#each}} ... {{/each}} lines and {{#join|SEP|}}}}
{{! ... {{/join}} repeat per lease variable ({{VAR}}); {{NAME}} is a constant.}}
if ( $?_GPUKEEPER_DEPTH ) then
    set _gpukeeper_depth = 0
    switch ( "$_GPUKEEPER_DEPTH" )
    case [0-9]:
    case [1-9][0-9]:
        set _gpukeeper_depth = $_GPUKEEPER_DEPTH
        breaksw
    endsw
    if ( $_gpukeeper_depth > 1 ) then
        @ _gpukeeper_depth = $_gpukeeper_depth - 1
        setenv _GPUKEEPER_DEPTH $_gpukeeper_depth
    else
{{#each}}
        if ( $?_GPUKEEPER_SAVED_{{VAR}} ) then
            setenv {{VAR}} "$_GPUKEEPER_SAVED_{{VAR}}"
            unsetenv _GPUKEEPER_SAVED_{{VAR}}
        else
            unsetenv {{VAR}}
        endif
{{/each}}
        unsetenv _GPUKEEPER_DEPTH
    endif
    unset _gpukeeper_depth
endif
