{{! The activate lease hook for csh, a template rendered by src/env/hooks.c: lines}}
{{! starting with {{! are dropped; {{#each}} ... {{/each}} lines and {{#join|SEP|}}}}
{{! ... {{/join}} repeat per lease variable ({{VAR}}); {{NAME}} is a constant.}}
{{! csh cannot redirect stderr alone, so the commands whose errors must stay}}
{{! quiet run under sh -c; `set x = "`cmd`"` keeps one word per output line.}}
{{! Under `csh -e` a failing command, also one in backquotes, ends the shell, so}}
{{! every sh -c here exits 0: the exit status of `gpukeeper lease env` comes}}
{{! back as the first line of its output. That sh script holds $, which csh}}
{{! would substitute inside "`...`", so it sits in a variable that only the}}
{{! backquoted command (parsed by csh once more) expands, as '"$_gpukeeper_sh"'.}}
{{! Messages are written by sh too: csh could only reopen /dev/stderr, whose}}
{{! own offset, when stderr is a file, lets later output overwrite the message.}}
{{! csh substitutes variables on a whole line before it looks at an if}}
{{! condition, so a variable that may be unset is only read inside an}}
{{! if ... then ... endif block.}}
if ( $?CONDA_PREFIX ) then
    sh -c 'exec 2>/dev/null; date +%s >"$1/{{LAST_ACTIVATED_FILE}}" || :' sh "$CONDA_PREFIX"
endif
set _gpukeeper_sh = 'if command -v gpukeeper >/dev/null 2>&1; then if o=$(gpukeeper lease env 2>/dev/null); then echo 0; printf "%s\n" "$o"; else echo $?; fi; else echo 127; fi'
set _gpukeeper_out = "`sh -c "'"$_gpukeeper_sh"'"`"
set _gpukeeper_status = "$_gpukeeper_out[1]"
if ( $_gpukeeper_status != 127 ) then
{{#each}}
    set _gpukeeper_new_{{VAR}} = ""
{{/each}}
    if ( $_gpukeeper_status == 0 ) then
        foreach _gpukeeper_line ( $_gpukeeper_out:q )
            switch ( "$_gpukeeper_line" )
            case "*'*'*'*":
                breaksw
{{#each}}
            case "export {{VAR}}='*'":
                set _gpukeeper_new_{{VAR}} = "$_gpukeeper_line:s/export {{VAR}}='//:s/'//"
                breaksw
{{/each}}
            endsw
        end
    endif
    if ( $?_GPUKEEPER_DEPTH ) then
        switch ( "$_GPUKEEPER_DEPTH" )
        case [0-9]:
        case [1-9][0-9]:
            breaksw
        default:
            setenv _GPUKEEPER_DEPTH 0
        endsw
    endif
    if ({{#join| &&|}} "$_gpukeeper_new_{{VAR}}" != ""{{/join}} ) then
        if ( ! $?_GPUKEEPER_DEPTH ) then
{{#each}}
            unsetenv _GPUKEEPER_SAVED_{{VAR}}
            if ( $?{{VAR}} ) then
                setenv _GPUKEEPER_SAVED_{{VAR}} "${{VAR}}"
            endif
{{/each}}
            setenv _GPUKEEPER_DEPTH 0
        endif
        @ _gpukeeper_depth = $_GPUKEEPER_DEPTH + 1
        setenv _GPUKEEPER_DEPTH $_gpukeeper_depth
{{#each}}
        setenv {{VAR}} "$_gpukeeper_new_{{VAR}}"
{{/each}}
    else
        if ( $?_GPUKEEPER_DEPTH ) then
            @ _gpukeeper_depth = $_GPUKEEPER_DEPTH + 1
            setenv _GPUKEEPER_DEPTH $_gpukeeper_depth
        endif
        if ( $_gpukeeper_status == 0 ) then
            sh -c 'echo "$1" >&2' sh "{{UNUSABLE_MESSAGE}}"
        else if ( $_gpukeeper_status == {{EXIT_UNREACHABLE}} ) then
            sh -c 'echo "$1" >&2' sh "{{UNREACHABLE_MESSAGE}}"
        else
            sh -c 'echo "$1" >&2' sh "{{NO_LEASE_MESSAGE}}"
        endif
    endif
    unset _gpukeeper_line _gpukeeper_depth
{{#each}}
    unset _gpukeeper_new_{{VAR}}
{{/each}}
endif
unset _gpukeeper_sh _gpukeeper_out _gpukeeper_status
