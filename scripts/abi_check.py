#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Compare the ABI of two C uAPI headers.

Usage: abi_check.py [--include DIR]... <reference-header> <candidate-header>

Both headers are parsed with libclang (for the x86_64 and i386 targets) and
the following is extracted from declarations located in the header itself:

  * #include directives (spelling, in order)
  * structs/unions: size, alignment, and per field: name, written tokens,
    sugared and canonical type, offset in bits, bit-field width, attributes;
    anonymous members are descended into and their members are also checked
    via offsetof() from the enclosing named record
  * enums: underlying integer type, enumerators and their values
  * other top-level declarations (typedefs, functions, variables): kind/type
  * macros: normalized token spelling, function-like or not; for macros that
    are integer constant expressions, value, sizeof and signedness computed by
    a program compiled with gcc and run

Any difference is printed and the exit status is 1; identical headers give a
one-line summary and exit status 0.  Errors while parsing either header give
exit status 2.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

# The unpacked PyPI libclang wheel (scripts/setup.sh puts it in the cache;
# scripts/host-tests.sh passes its location).
LIBCLANG_ROOT = os.environ.get("ABI_CHECK_LIBCLANG_ROOT", "")
LIBCLANG_SO = os.environ.get(
    "ABI_CHECK_LIBCLANG_SO",
    os.path.join(LIBCLANG_ROOT, "clang", "native", "libclang.so"))

sys.path.insert(0, LIBCLANG_ROOT)
import clang.cindex as ci  # noqa: E402

ci.Config.set_library_file(LIBCLANG_SO)

# (label, extra clang args, extra gcc args)
TARGETS = [
    ("x86_64", ["-target", "x86_64-linux-gnu"], []),
    ("i386", ["-target", "i386-linux-gnu"], ["-m32"]),
]

RECORD_KINDS = (ci.CursorKind.STRUCT_DECL, ci.CursorKind.UNION_DECL)


class ParseError(Exception):
    pass


def default_includes():
    dirs = []
    for d in ("/usr/include/x86_64-linux-gnu", "/usr/include"):
        if os.path.isdir(d):
            dirs.append(d)
    return dirs


def in_header(cursor, path):
    loc = cursor.location
    return loc.file is not None and os.path.realpath(loc.file.name) == path


def toks(cursor):
    return [t.spelling for t in cursor.get_tokens()]


def record_label(cursor, parent_label=None, index=0):
    if cursor.is_anonymous() or not cursor.spelling or "(anonymous" in cursor.spelling \
            or "(unnamed" in cursor.spelling:
        kind = "union" if cursor.kind == ci.CursorKind.UNION_DECL else "struct"
        return "%s::<anon %s #%d>" % (parent_label or "<top>", kind, index)
    kind = "union" if cursor.kind == ci.CursorKind.UNION_DECL else "struct"
    return "%s %s" % (kind, cursor.spelling)


def dump_record(cursor, label, out, counts):
    """Add facts about one record (and its anonymous sub-records) to out."""
    t = cursor.type
    out["%s: size" % label] = t.get_size()
    out["%s: align" % label] = t.get_align()
    out["%s: complete" % label] = cursor.is_definition()
    counts["records"] += 1
    field_names = []
    anon_idx = 0
    rec_tokens = list(cursor.get_tokens())
    if "::" not in label:
        out["%s: written" % label] = " ".join(t.spelling for t in rec_tokens)
    for child in cursor.get_children():
        if child.kind in RECORD_KINDS and child.is_definition():
            if child.is_anonymous():
                sub = record_label(child, label, anon_idx)
                anon_idx += 1
                dump_record(child, sub, out, counts)
            # named nested records are visited by the caller via walk
            continue
        if child.kind != ci.CursorKind.FIELD_DECL:
            continue
        name = child.spelling
        field_names.append(name)
        counts["fields"] += 1
        key = "%s.%s" % (label, name)
        ft = child.type
        out[key + ": type"] = ft.spelling
        out[key + ": canonical"] = ft.get_canonical().spelling
        out[key + ": type-size"] = ft.get_size()
        out[key + ": type-align"] = ft.get_align()
        out[key + ": offset-bits"] = child.get_field_offsetof()
        out[key + ": bitfield"] = child.get_bitfield_width() if child.is_bitfield() else None
        out[key + ": written"] = written_decl(child, rec_tokens)
        attrs = []
        for a in child.get_children():
            if a.kind.is_attribute():
                attrs.append("%s(%s)" % (a.kind.name, " ".join(toks(a))))
        out[key + ": attrs"] = attrs
    out["%s: field order" % label] = field_names
    # Every member reachable by name (including through anonymous members)
    # must have the same offset within the outermost named record.
    if not label.startswith("<top>") and "::" not in label:
        for name in member_names(cursor):
            out["%s: offsetof(%s)" % (label, name)] = t.get_offset(name)


def written_decl(field, rec_tokens):
    """Tokens of a member declaration as written in the source.

    The cursor extent of a field whose type is a macro (e.g. __aligned_u64)
    starts inside the macro definition, so take the enclosing record's tokens
    from the previous ';', '{' or '}' up to the ';' after the field name."""
    own = [t.spelling for t in field.get_tokens()]
    loc = field.location
    idx = None
    for i, t in enumerate(rec_tokens):
        if t.location.offset == loc.offset and t.spelling == field.spelling:
            idx = i
            break
    if idx is None:
        return " ".join(own)
    lo = idx
    while lo > 0 and rec_tokens[lo - 1].spelling not in (";", "{", "}"):
        lo -= 1
    hi = idx
    while hi < len(rec_tokens) - 1 and rec_tokens[hi].spelling != ";":
        hi += 1
    return " ".join(t.spelling for t in rec_tokens[lo:hi + 1])


def member_names(cursor):
    names = []
    for child in cursor.get_children():
        if child.kind == ci.CursorKind.FIELD_DECL and child.spelling:
            names.append(child.spelling)
        elif child.kind in RECORD_KINDS and child.is_anonymous():
            names.extend(member_names(child))
    return names


def dump_enum(cursor, out, counts):
    enumerators = [c for c in cursor.get_children()
                   if c.kind == ci.CursorKind.ENUM_CONSTANT_DECL]
    if cursor.is_anonymous() or not cursor.spelling or "(anonymous" in cursor.spelling \
            or "(unnamed" in cursor.spelling:
        first = enumerators[0].spelling if enumerators else "?"
        label = "enum <anon starting with %s>" % first
    else:
        label = "enum %s" % cursor.spelling
    counts["enums"] += 1
    out[label + ": integer type"] = cursor.enum_type.get_canonical().spelling
    out[label + ": size"] = cursor.type.get_size()
    out[label + ": enumerators"] = [e.spelling for e in enumerators]
    for e in enumerators:
        counts["enumerators"] += 1
        out["%s::%s: value" % (label, e.spelling)] = e.enum_value


def macro_facts(cursor):
    ts = list(cursor.get_tokens())
    if not ts:
        return None
    function_like = (len(ts) > 1 and ts[1].spelling == "("
                     and ts[1].extent.start.offset == ts[0].extent.end.offset)
    return {"function_like": function_like,
            "tokens": " ".join(t.spelling for t in ts)}


def parse(header, includes, clang_target_args):
    path = os.path.realpath(header)
    args = ["-x", "c", "-std=gnu11"] + clang_target_args
    args += ["-I" + d for d in includes]
    index = ci.Index.create()
    tu = index.parse(path, args=args,
                     options=ci.TranslationUnit.PARSE_DETAILED_PROCESSING_RECORD)
    errors = [str(d) for d in tu.diagnostics if d.severity >= ci.Diagnostic.Error]
    if errors:
        raise ParseError("%s:\n  %s" % (header, "\n  ".join(errors)))

    out = {}
    counts = {"records": 0, "fields": 0, "enums": 0, "enumerators": 0, "macros": 0}
    macros = {}
    includes_seen = []
    top_names = []

    def walk(cursor, parent_label):
        anon_idx = 0
        for c in cursor.get_children():
            if not in_header(c, path):
                continue
            if c.kind == ci.CursorKind.INCLUSION_DIRECTIVE:
                includes_seen.append(" ".join(toks(c)))
            elif c.kind == ci.CursorKind.MACRO_DEFINITION:
                f = macro_facts(c)
                if f is not None:
                    macros[c.spelling] = f
            elif c.kind in RECORD_KINDS:
                if not c.is_definition():
                    if parent_label is None:
                        top_names.append("declaration %s" % record_label(c))
                    continue
                if c.is_anonymous() and parent_label is not None:
                    continue  # handled by dump_record of the parent
                label = record_label(c, parent_label, anon_idx)
                if c.is_anonymous():
                    anon_idx += 1
                if parent_label is None:
                    top_names.append(label)
                dump_record(c, label, out, counts)
                walk(c, label)  # named nested records
            elif c.kind == ci.CursorKind.ENUM_DECL:
                dump_enum(c, out, counts)
            elif parent_label is None and c.kind in (
                    ci.CursorKind.TYPEDEF_DECL, ci.CursorKind.FUNCTION_DECL,
                    ci.CursorKind.VAR_DECL):
                label = "%s %s" % (c.kind.name, c.spelling)
                top_names.append(label)
                out[label + ": type"] = c.type.spelling
                out[label + ": canonical"] = c.type.get_canonical().spelling
            elif parent_label is None and c.kind not in (
                    ci.CursorKind.MACRO_INSTANTIATION,):
                label = "%s %s" % (c.kind.name, c.spelling)
                top_names.append(label)

    walk(tu.cursor, None)
    out["#include directives"] = includes_seen
    out["top-level declarations"] = sorted(top_names)
    out["macro names"] = sorted(macros)
    for name, f in macros.items():
        counts["macros"] += 1
        out["macro %s: function-like" % name] = f["function_like"]
        out["macro %s: tokens" % name] = f["tokens"]
    return path, out, counts, macros


def evaluate_macros(path, macros, includes, gcc_args):
    """Return {name: (value, sizeof, signed)} for integer-constant macros."""
    candidates = sorted(n for n, f in macros.items() if not f["function_like"])
    if not candidates:
        return {}
    with tempfile.TemporaryDirectory(prefix="abi_check_") as tmp:
        # Pass 1: let clang tell which candidates are integer constant
        # expressions (one per line, so diagnostics map to names).
        probe = os.path.join(tmp, "probe.c")
        lines = ['#include "%s"' % path]
        first = len(lines) + 1
        for n in candidates:
            lines.append("_Static_assert((%s) || 1, \"\");" % n)
        with open(probe, "w") as f:
            f.write("\n".join(lines) + "\n")
        args = ["-x", "c", "-std=gnu11", "-Wno-everything"]
        args += ["-I" + d for d in includes]
        if "-m32" in gcc_args:
            args += ["-target", "i386-linux-gnu"]
        tu = ci.Index.create().parse(probe, args=args)
        bad_lines = {d.location.line for d in tu.diagnostics
                     if d.severity >= ci.Diagnostic.Error and d.location.file
                     and os.path.realpath(d.location.file.name) == os.path.realpath(probe)}
        ok = [n for i, n in enumerate(candidates) if (first + i) not in bad_lines]
        # Integer-typed only: reject floating/pointer constants.
        prog = os.path.join(tmp, "eval.c")
        body = ['#include <stdio.h>', '#include "%s"' % path,
                "int main(void) {"]
        for n in ok:
            body.append(
                "  _Static_assert(__builtin_classify_type((%s)) == 1 || "
                "__builtin_classify_type((%s)) == 2 || "
                "__builtin_classify_type((%s)) == 3 || "
                "__builtin_classify_type((%s)) == 4, \"not integer\");" % (n, n, n, n))
            body.append(
                '  printf("%%s %%llu %%zu %%d\\n", "%s", '
                "(unsigned long long)(%s), sizeof((%s)), "
                "(int)(((__typeof__((%s) + 0))0 - 1) < 0));" % (n, n, n, n))
        body.append("  return 0;\n}")
        with open(prog, "w") as f:
            f.write("\n".join(body) + "\n")
        exe = os.path.join(tmp, "eval")
        cmd = ["gcc", "-std=gnu11", "-w"] + gcc_args + ["-I" + d for d in includes] \
            + ["-o", exe, prog]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            # Drop the offending macros one at a time from gcc's errors.
            bad = set()
            for m in re.finditer(r"eval\.c:(\d+):", r.stderr):
                ln = int(m.group(1))
                idx = (ln - 4) // 2
                if 0 <= idx < len(ok):
                    bad.add(ok[idx])
            if not bad:
                raise ParseError("gcc failed evaluating macros:\n" + r.stderr)
            keep = {n: macros[n] for n in macros if n not in bad}
            res = evaluate_macros(path, keep, includes, gcc_args)
            return res
        r = subprocess.run([exe], capture_output=True, text=True)
        if r.returncode != 0:
            raise ParseError("macro evaluation program failed (%s)" % gcc_args)
        res = {}
        for line in r.stdout.splitlines():
            name, val, size, signed = line.split()
            res[name] = (int(val), int(size), bool(int(signed)))
        return res


def can_run_m32():
    with tempfile.TemporaryDirectory(prefix="abi_check_") as tmp:
        src = os.path.join(tmp, "t.c")
        with open(src, "w") as f:
            f.write("#include <stdio.h>\nint main(void){return 0;}\n")
        exe = os.path.join(tmp, "t")
        r = subprocess.run(["gcc", "-m32", "-o", exe, src], capture_output=True)
        if r.returncode != 0:
            return False
        return subprocess.run([exe]).returncode == 0


def collect(header, includes):
    facts = {}
    counts = None
    for label, clang_args, gcc_args in TARGETS:
        path, out, c, macros = parse(header, includes, clang_args)
        if counts is None:
            counts = c
        for k, v in out.items():
            facts["[%s] %s" % (label, k)] = v
        if gcc_args and not can_run_m32():
            facts["[%s] macro values" % label] = "not evaluated (gcc -m32 unavailable)"
            continue
        values = evaluate_macros(path, macros, includes, gcc_args)
        facts["[%s] integer macros" % label] = sorted(values)
        for n, (val, size, signed) in values.items():
            facts["[%s] macro %s: value" % (label, n)] = hex(val)
            facts["[%s] macro %s: sizeof" % (label, n)] = size
            facts["[%s] macro %s: signed" % (label, n)] = signed
        if label == TARGETS[0][0]:
            counts["evaluated macros"] = len(values)
    return facts, counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--include", "-I", action="append", default=None,
                    help="include directory for <linux/types.h> etc. "
                         "(default: /usr/include and its multiarch dir)")
    ap.add_argument("--dump", action="store_true",
                    help="also print every fact extracted from the candidate")
    ap.add_argument("reference")
    ap.add_argument("candidate")
    a = ap.parse_args()
    includes = a.include if a.include else default_includes()
    try:
        ref, ref_counts = collect(a.reference, includes)
        cand, cand_counts = collect(a.candidate, includes)
    except ParseError as e:
        print("abi_check: parse error: %s" % e, file=sys.stderr)
        return 2

    if a.dump:
        for k in sorted(cand):
            print("%s = %r" % (k, cand[k]))
    diffs = []
    for k in sorted(set(ref) | set(cand)):
        if k not in cand:
            diffs.append("missing in candidate: %s = %r" % (k, ref[k]))
        elif k not in ref:
            diffs.append("extra in candidate: %s = %r" % (k, cand[k]))
        elif ref[k] != cand[k]:
            diffs.append("differs: %s: reference %r, candidate %r" % (k, ref[k], cand[k]))
    if diffs:
        for d in diffs:
            print(d)
        print("abi_check: %d difference(s)" % len(diffs))
        return 1
    c = ref_counts
    print("abi_check: identical ABI (%s): %d structs/unions, %d fields, %d enums, "
          "%d enumerators, %d macros (%d integer-valued), %d facts compared"
          % ("+".join(t[0] for t in TARGETS), c["records"], c["fields"], c["enums"],
             c["enumerators"], c["macros"], c.get("evaluated macros", 0), len(ref)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
