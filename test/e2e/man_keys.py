#!/usr/bin/python3
"""The man pages and the example config document exactly the keys the code accepts.

    man_keys.py --source DIR [--man-dir BUILD_DIR]

1. Reads the schema table of DIR/src/core/config.cpp (the `schema{{ {"xmpp", {...}}, ...}}`
   initializer) and checks that
   - every table of the schema has its section in packaging/man/xsgw.toml.5.scd
     ("# THE [table] TABLE") and every table.key is described under it (a line "*key* = ..."),
   - the page describes no table or key the code does not accept, names no dotted
     table.key the code does not accept, and its EXAMPLE is TOML with only accepted keys,
   - etc/xsgw.toml names every table.key (set, or commented out as "# key = ...") under
     its [table] and no other key.
2. With --man-dir: the generated roff pages xsgw.8 and xsgw.toml.5 exist, are not empty,
   render with man(1) (or groff) without warnings, and the rendered xsgw.toml(5) shows every key.

Prints one PASS or FAIL line per check; exits 1 when any check failed, 2 on bad usage.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

failures = 0


def report(ok, what, detail=""):
    global failures
    if not ok:
        failures += 1
    print(f"{'PASS' if ok else 'FAIL'}: {what}{': ' + detail if detail and not ok else ''}")
    return ok


def strip_cpp_comments(text):
    """Drops // and /* */ comments, keeping string and character literals intact."""
    pattern = re.compile(r'("(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\')|//[^\n]*|/\*.*?\*/', re.S)
    return pattern.sub(lambda m: m.group(1) or " ", text)


def schema_from_source(config_cpp):
    """{table: [keys]} from the `schema{{ ... }}` initializer of config.cpp, in order."""
    text = strip_cpp_comments(config_cpp.read_text(encoding="utf-8"))
    start = re.search(r"\bschema\s*=?\s*\{\s*\{", text)
    if not start:
        raise ValueError(f"{config_cpp}: no `schema{{{{` initializer found")
    # The whole initializer: from its first brace to the matching one (no braces in the
    # strings of a table/key list, so plain counting is enough).
    first = text.index("{", start.start())
    depth = 0
    body = None
    for i in range(first, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                body = text[first + 1:i]
                break
    if body is None:
        raise ValueError(f"{config_cpp}: the schema initializer never closes")
    schema = {}
    for entry in re.finditer(r'\{\s*"([^"]*)"\s*,\s*\{([^{}]*)\}\s*\}', body):
        table = entry.group(1)
        keys = [k for k in re.findall(r'"([^"]*)"', entry.group(2)) if k]
        if table in schema:
            raise ValueError(f"{config_cpp}: table {table} twice in the schema")
        schema[table] = keys
    if not schema or not all(schema.values()):
        raise ValueError(f"{config_cpp}: could not read the schema tables and keys")
    return schema


def page_sections(scd_text):
    """{table: [keys]} as documented in the page: a "# THE [table] TABLE" section holds the
    key entries "*key* = type"; any other "# " heading ends the table sections."""
    documented = {}
    table = None
    for line in scd_text.splitlines():
        heading = re.match(r"#\s+(.*)", line)
        if heading:
            named = re.fullmatch(r"THE \[([A-Za-z0-9_-]+)\] TABLE", heading.group(1).strip())
            table = named.group(1) if named else None
            if table is not None:
                documented.setdefault(table, [])
            continue
        entry = re.match(r"\*([A-Za-z0-9_-]+)\*\s*=", line)
        if entry and table is not None:
            documented[table].append(entry.group(1))
    return documented


def example_toml(scd_text):
    """The literal block of the EXAMPLE section, or None."""
    m = re.search(r"^# EXAMPLE\s*$(.*?)^# ", scd_text + "\n# ", re.S | re.M)
    if not m:
        return None
    block = re.search(r"^```\s*$\n(.*?)^```\s*$", m.group(1), re.S | re.M)
    return block.group(1) if block else None


def example_config_keys(toml_text):
    """{table: [keys]} named in etc/xsgw.toml: set keys and commented-out "# key = ..." ones."""
    named = {}
    table = None
    for line in toml_text.splitlines():
        header = re.match(r"\s*\[\s*([A-Za-z0-9_-]+)\s*\]\s*(#.*)?$", line)
        if header:
            table = header.group(1)
            named.setdefault(table, [])
            continue
        key = re.match(r"\s*(?:#\s*)?([A-Za-z0-9_-]+)\s*=", line)
        if key and table is not None:
            named[table].append(key.group(1))
    return named


def check_documented(schema, documented, where):
    for table, keys in schema.items():
        if not report(table in documented, f"{where}: table [{table}] present"):
            continue
        for key in keys:
            report(key in documented[table], f"{where}: {table}.{key} documented under [{table}]")
    for table, keys in documented.items():
        if table not in schema:
            report(False, f"{where}: table [{table}] is accepted by the code", "unknown table")
            continue
        extra = sorted(set(keys) - set(schema[table]))
        report(not extra, f"{where}: [{table}] names only accepted keys",
               ", ".join(f"{table}.{k}" for k in extra))
        twice = sorted({k for k in keys if keys.count(k) > 1})
        report(not twice, f"{where}: [{table}] names each key once", ", ".join(twice))


def check_sources(source):
    config_cpp = source / "src" / "core" / "config.cpp"
    page = source / "packaging" / "man" / "xsgw.toml.5.scd"
    example = source / "etc" / "xsgw.toml"
    try:
        schema = schema_from_source(config_cpp)
    except (OSError, ValueError) as error:
        report(False, "schema read from src/core/config.cpp", str(error))
        return None
    count = sum(len(k) for k in schema.values())
    report(True, f"schema read from src/core/config.cpp: {len(schema)} tables, {count} keys")
    print("      " + " ".join(f"{t}.{k}" for t, keys in schema.items() for k in keys))

    try:
        scd = page.read_text(encoding="utf-8")
    except OSError as error:
        report(False, "read packaging/man/xsgw.toml.5.scd", str(error))
        return schema
    check_documented(schema, page_sections(scd), "xsgw.toml.5.scd")

    # Any dotted table.key the page mentions in its text must exist too.
    accepted = {f"{t}.{k}" for t, keys in schema.items() for k in keys}
    # (Not part of a longer dotted name such as sip.example.org or user*sip.example.)
    tables = "|".join(map(re.escape, schema))
    mentioned = set(re.findall(
        rf"(?<![\w.@:/-])({tables})\.([a-z][a-z0-9_]*)(?![\w.@-]*[\w@])", scd))
    unknown = sorted(f"{t}.{k}" for t, k in mentioned if f"{t}.{k}" not in accepted)
    report(not unknown, "xsgw.toml.5.scd: every dotted table.key it mentions is accepted",
           ", ".join(unknown))

    block = example_toml(scd)
    if report(block is not None, "xsgw.toml.5.scd: EXAMPLE section has a literal block"):
        try:
            parsed = tomllib.loads(block)
        except tomllib.TOMLDecodeError as error:
            report(False, "xsgw.toml.5.scd: EXAMPLE is valid TOML", str(error))
        else:
            report(True, "xsgw.toml.5.scd: EXAMPLE is valid TOML")
            bad = [f"{t}.{k}" if isinstance(v, dict) else t
                   for t, v in parsed.items()
                   for k in (v if isinstance(v, dict) else [None])
                   if t not in schema or not isinstance(v, dict) or k not in schema[t]]
            report(not bad, "xsgw.toml.5.scd: EXAMPLE uses only accepted tables and keys",
                   ", ".join(bad))

    try:
        etc = example.read_text(encoding="utf-8")
    except OSError as error:
        report(False, "read etc/xsgw.toml", str(error))
        return schema
    try:
        tomllib.loads(etc)
        report(True, "etc/xsgw.toml is valid TOML")
    except tomllib.TOMLDecodeError as error:
        report(False, "etc/xsgw.toml is valid TOML", str(error))
    check_documented(schema, example_config_keys(etc), "etc/xsgw.toml")
    return schema


def render_command(path):
    """A command that formats a roff man page with warnings on, output discarded."""
    if shutil.which("man"):
        return ["man", "--warnings", "-E", "UTF-8", "-l", str(path)]
    if shutil.which("groff"):
        return ["groff", "-man", "-Tutf8", "-ww", str(path)]
    return None


def check_rendered(man_dir, schema):
    env = dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat", LC_ALL="C.UTF-8")
    for name in ("xsgw.8", "xsgw.toml.5"):
        path = man_dir / name
        if not report(path.is_file() and path.stat().st_size > 0, f"{path} exists and is not empty"):
            continue
        command = render_command(path)
        if command is None:
            print(f"SKIP: render {name}: neither man nor groff is installed")
            continue
        run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        report(run.returncode == 0 and not run.stderr.strip(),
               f"{name} renders with {command[0]} without warnings",
               f"exit {run.returncode}: {run.stderr.strip()}")
        if name == "xsgw.toml.5" and schema and run.returncode == 0:
            # Formatting must not have eaten a key (an underscore read as markup, say).
            shown = re.sub(r".\x08", "", run.stdout)  # drop overstrike bold/underline
            shown = re.sub(r"\x1b\[[0-9;]*m", "", shown)  # and SGR colour escapes
            shown = re.sub(r"\u2010\n\s*", "", shown)  # rejoin hyphenated words
            missing = [f"{t}.{k}" for t, keys in schema.items() for k in keys
                       if not re.search(rf"^\s+{re.escape(k)} = ", shown, re.M)]
            report(not missing, f"{name} rendered shows every key as an entry",
                   ", ".join(missing))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, type=Path, help="the source tree")
    parser.add_argument("--man-dir", type=Path, help="where the generated roff pages are")
    args = parser.parse_args()

    schema = check_sources(args.source)
    if args.man_dir is not None:
        check_rendered(args.man_dir, schema)
    print(f"{'FAIL' if failures else 'PASS'}: man_keys: {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
