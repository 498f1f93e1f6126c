#!/usr/bin/env python3
"""Turn a text file into a C file defining `const char NAME[]` with its
contents, one string literal per line so the generated C stays readable.

Usage: embed.py NAME INPUT OUTPUT [HEADER]

HEADER (default metrics/dashboard.h) is the header the C file includes,
the one that declares NAME."""
import sys


def c_literal(line):
    out = []
    for ch in line:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "?":
            out.append("\\?")  # no trigraphs, whatever the compiler's mode
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\%03o" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def main():
    name, src, dst = sys.argv[1:4]
    header = sys.argv[4] if len(sys.argv) > 4 else "metrics/dashboard.h"
    with open(src, encoding="utf-8") as f:
        lines = f.read().splitlines(keepends=True)
    with open(dst, "w", encoding="utf-8") as f:
        f.write(f"/* Generated from {src.rsplit('/', 1)[-1]} by embed.py: do not edit. */\n")
        f.write(f'#include "{header}"\n\n')
        f.write(f"const char {name}[] =\n")
        for line in lines:
            f.write("    " + c_literal(line) + "\n")
        f.write("    \"\";\n")


if __name__ == "__main__":
    main()
