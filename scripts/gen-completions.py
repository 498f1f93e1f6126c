#!/usr/bin/python3
"""Generate bash, zsh and fish completion for `gpukeeper` from its own --help.

The CLI's help texts are the one table of its commands and options: this
reads `gpukeeper --help` (the commands) and `gpukeeper COMMAND --help` (each
command's subcommands, from its "Commands:" block, and its options, every
--long option its usage and "Options:" block name), so completion can never
offer what --help does not show, nor miss what it does.

Usage: gen-completions.py GPUKEEPER OUT_DIR
Writes OUT_DIR/gpukeeper.bash, OUT_DIR/_gpukeeper (zsh), OUT_DIR/gpukeeper.fish.
"""

import re
import subprocess
import sys
from pathlib import Path

OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
COMMAND_LINE = re.compile(r"^  ([a-z][a-z0-9-]*)(?:\s+(.*))?$")


def run_help(gk, *args):
    r = subprocess.run([gk, *args, "--help"], capture_output=True, text=True, timeout=30,
                       env={"LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"})
    if r.returncode != 0:
        sys.exit(f"{gk} {' '.join(args)} --help exited {r.returncode}: {r.stderr}")
    return r.stdout


def blocks(text):
    """{heading: [lines]} of the 'Commands:' / 'Options:' blocks, plus 'Usage'."""
    out, cur = {"Usage": []}, "Usage"
    for line in text.splitlines():
        if re.match(r"^[A-Z][a-z]+:$", line):
            cur = line[:-1]
            out[cur] = []
        elif line.strip() == "":
            if cur != "Usage":
                cur = None
        elif cur:
            out.setdefault(cur, []).append(line)
    return out


def commands(block):
    found = []
    for line in block:
        m = COMMAND_LINE.match(line)
        if m and not line.startswith("   "):
            found.append((m.group(1), (m.group(2) or "").strip()))
    return found


def usage_subcommands(verb, block):
    """Subcommands named on the usage lines ("gpukeeper admin drain GPU"),
    for commands whose help has no Commands: block."""
    found = []
    for line in block:
        for sub in re.findall(r"gpukeeper %s ([a-z][a-z0-9-]*)\b" % re.escape(verb), line):
            if sub not in [s for s, _ in found]:
                found.append((sub, ""))
    return found


def options(text_blocks):
    seen = []
    for key in ("Usage", "Options"):
        for line in text_blocks.get(key, []):
            for o in OPTION.findall(line):
                if o not in seen:
                    seen.append(o)
    return seen


def model(gk):
    top = blocks(run_help(gk))
    verbs = [(n, s) for n, s in commands(top.get("Commands", [])) if n != "help"]
    out = {"options": options(top), "verbs": []}
    for name, summary in verbs:
        b = blocks(run_help(gk, name))
        subs = commands(b.get("Commands", [])) or usage_subcommands(name, b["Usage"])
        out["verbs"].append({"name": name, "summary": summary, "subcommands": subs,
                             "options": options(b)})
    return out


def bash(m):
    verbs = " ".join(v["name"] for v in m["verbs"]) + " help"
    cases = []
    for v in m["verbs"]:
        subs = " ".join(s for s, _ in v["subcommands"])
        opts = " ".join(v["options"])
        cases.append(f'        {v["name"]}) subs="{subs}"; opts="{opts}" ;;')
    return f"""# bash completion for gpukeeper, generated from its --help by scripts/gen-completions.py
_gpukeeper()
{{
    local cur=${{COMP_WORDS[COMP_CWORD]}} verb="" sub="" i subs="" opts=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${{COMP_WORDS[i]}} in
            --socket) ((i++)) ;;
            -*) ;;
            *) if [[ -z $verb ]]; then verb=${{COMP_WORDS[i]}}; elif [[ -z $sub ]]; then sub=${{COMP_WORDS[i]}}; fi ;;
        esac
    done
    if [[ -z $verb ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "{' '.join(m['options'])}" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "{verbs}" -- "$cur"))
        fi
        return
    fi
    case $verb in
{chr(10).join(cases)}
        help) subs="{verbs}" ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    elif [[ -n $subs && -z $sub ]]; then
        COMPREPLY=($(compgen -W "$subs" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}}
complete -F _gpukeeper gpukeeper
"""


def zsh_quote(s):
    return s.replace("'", "'\\''").replace(":", "\\:").replace("[", "\\[").replace("]", "\\]")


def zsh(m):
    verb_lines = "\n".join(f"        '{v['name']}:{zsh_quote(v['summary'])}'" for v in m["verbs"])
    cases = []
    for v in m["verbs"]:
        subs = " ".join(f"'{s}:{zsh_quote(d)}'" for s, d in v["subcommands"])
        opts = " ".join(f"'{o}'" for o in v["options"])
        cases.append(f"        {v['name']})\n"
                     f"            subs=({subs})\n"
                     f"            opts=({opts}) ;;")
    return f"""#compdef gpukeeper
# zsh completion for gpukeeper, generated from its --help by scripts/gen-completions.py
_gpukeeper() {{
    local -a verbs subs opts
    verbs=(
{verb_lines}
    )
    if (( CURRENT == 2 )); then
        if [[ $words[CURRENT] == -* ]]; then
            compadd -- {' '.join(m['options'])}
        else
            _describe -t commands 'gpukeeper command' verbs
        fi
        return
    fi
    case $words[2] in
{chr(10).join(cases)}
    esac
    if [[ $words[CURRENT] == -* ]]; then
        compadd -- $opts
    elif (( CURRENT == 3 )) && (( $#subs )); then
        _describe -t commands 'subcommand' subs
    else
        _files
    fi
}}
_gpukeeper "$@"
"""


def fish_quote(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish(m):
    names = " ".join(v["name"] for v in m["verbs"])
    lines = ["# fish completion for gpukeeper, generated from its --help by "
             "scripts/gen-completions.py",
             "complete -c gpukeeper -f"]
    for v in m["verbs"]:
        lines.append(f"complete -c gpukeeper -n 'not __fish_seen_subcommand_from {names}' "
                     f"-a {v['name']} -d {fish_quote(v['summary'])}")
    for o in m["options"]:
        lines.append(f"complete -c gpukeeper -n 'not __fish_seen_subcommand_from {names}' "
                     f"-l {o[2:]}")
    for v in m["verbs"]:
        subs = " ".join(s for s, _ in v["subcommands"])
        for s, d in v["subcommands"]:
            cond = f"__fish_seen_subcommand_from {v['name']}; and not __fish_seen_subcommand_from {subs}"
            lines.append(f"complete -c gpukeeper -n {fish_quote(cond)} -a {s} -d {fish_quote(d)}")
        for o in v["options"]:
            lines.append(f"complete -c gpukeeper -n '__fish_seen_subcommand_from {v['name']}' "
                         f"-l {o[2:]}")
    return "\n".join(lines) + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    gk, out = sys.argv[1], Path(sys.argv[2])
    m = model(gk)
    if not m["verbs"]:
        sys.exit(f"no commands found in {gk} --help")
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpukeeper.bash").write_text(bash(m))
    (out / "_gpukeeper").write_text(zsh(m))
    (out / "gpukeeper.fish").write_text(fish(m))


if __name__ == "__main__":
    main()
