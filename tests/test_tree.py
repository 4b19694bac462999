"""The binding's tree shows one scheduler and two APIs (src/binding/):

    loop/   the scheduler; it names nothing of the folders above it (an API
            adds its kinds of task to the loop's table at module init)
    io/     streams, the accept loop, UDP, WebSocket: over loop/ only
    v2/     uasyncio 2.0 beyond the loop: over loop/ and io/
    v3/     uasyncio.v3: over loop/ and io/, never v2/ (nor v2/ over v3/)

module.c, the module's init, wires them together and may name them all;
ua.h and compat.h, which everything includes, name none of them.

Checked on the sources: the headers each file includes, and the names it
uses that belong to another folder: a function or a variable that folder
defines outside static scope, a macro, type or enum constant of its
headers. A declaration makes no owner (ua.h declaring a v3 function would
not make it the loop's to call), and a file's own definition of a name
(an enum constant of its own) is its own."""
import functools
import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINDING = os.path.join(ROOT, "src", "binding")
CORE = os.path.join(ROOT, "src", "core")

FOLDERS = ("loop", "io", "v2", "v3")
# What each folder may use besides itself ("root": ua.h and compat.h).
ALLOWED = {
    "root": set(),
    "loop": {"root"},
    "io": {"root", "loop"},
    "v2": {"root", "loop", "io"},
    "v3": {"root", "loop", "io"},
}
INIT = "module.c"   # may use everything
ROOT_FILES = {INIT, "ua.h", "compat.h"}

IDENT = re.compile(r"[A-Za-z_]\w*")
C_WORDS = {"static", "inline", "extern", "const", "volatile", "struct", "union", "enum", "typedef",
           "unsigned", "signed", "register"}


def folder_of(path):
    """loop, io, v2, v3, root (a file at the top of src/binding), or core."""
    rel = os.path.relpath(path, BINDING)
    if rel.startswith(".."):
        return "core"
    parts = rel.split(os.sep)
    return parts[0] if len(parts) > 1 else "root"


def binding_files():
    return sorted(glob.glob(os.path.join(BINDING, "**", "*.[ch]"), recursive=True))


def strip(text):
    """The text without comments, string and character literals (their
    places kept blank, so lines still count)."""
    return re.sub(r"/\*.*?\*/|//[^\n]*|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'",
                  lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)


def includes(path, text):
    """The files path includes with "...": each resolved as the compiler
    does (its own folder first, then src/binding, then src/core)."""
    found = []
    for name in re.findall(r'^\s*#\s*include\s+"([^"]+)"', text, re.M):
        for base in (os.path.dirname(path), BINDING, CORE):
            cand = os.path.normpath(os.path.join(base, name))
            if os.path.exists(cand):
                found.append((name, cand))
                break
        else:
            found.append((name, None))
    return found


def last_ident(s):
    names = [n for n in IDENT.findall(re.sub(r"\[[^\]]*\]", "", s)) if n not in C_WORDS]
    return names[-1] if names else None


def split_top(s):
    """s split at its commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return parts + [cur]


def definitions(text):
    """(public, static, declared): the names a file defines at file scope,
    from its stripped text (macros, types, struct and enum tags, enum
    constants, functions and variables), and those it only declares
    (prototypes, extern). static holds the macros, the types and what is
    defined static; public the other functions and variables."""
    public, static, declared = set(), set(), set()
    static.update(re.findall(r"^\s*#\s*define\s+(\w+)", text, re.M))
    body = re.sub(r"^\s*#.*?(?<!\\)$", "", text, flags=re.M | re.S)
    i, n, stmt = 0, len(body), ""
    while i < n:
        ch = body[i]
        if ch == "{":
            depth, j = 1, i + 1
            while j < n and depth:
                depth += body[j] == "{"
                depth -= body[j] == "}"
                j += 1
            block = body[i + 1:j - 1]
            head = stmt.strip()
            kind = re.search(r"\b(struct|union|enum)\s*(\w*)\s*$", head)
            if kind:   # a type's body: its tag and, for an enum, its constants
                if kind.group(2):
                    static.add(kind.group(2))
                if kind.group(1) == "enum":
                    for item in split_top(block):
                        name = IDENT.match(item.strip())
                        if name:
                            static.add(name.group(0))
                stmt = head + " BODY "
            elif head.endswith(")"):   # a function definition
                name = last_ident(head[:head.index("(")])
                if name:
                    (static if re.match(r"static\b", head) else public).add(name)
                stmt = ""
            else:   # an initializer: the statement goes on to its ';'
                stmt = head + " INIT "
            i = j
            continue
        if ch == ";":
            declaration(stmt.strip(), public, static, declared)
            stmt = ""
        else:
            stmt += ch
        i += 1
    return public, static, declared


def declaration(s, public, static, declared):
    s = re.sub(r"\bBODY\b", " ", s).strip()
    if not s or s.startswith("_Static_assert") or re.fullmatch(r"(static\s+)?(struct|union|enum)(\s+\w+)?", s):
        return   # a type alone (its tag is counted already), or declared ahead
    if s.startswith("typedef"):
        fp = re.search(r"\(\s*\*\s*(\w+)\s*\)", s)
        static.add(fp.group(1) if fp else last_ident(s))
        return
    into = declared if re.match(r"extern\b", s) else static if re.match(r"static\b", s) else public
    if "INIT" not in s and "(" in s:
        first = s.index("(")
        pointer = re.match(r"\s*\*\s*(\w+)", s[first + 1:])
        if pointer:   # a pointer to a function: int (*name)(...)
            into.add(pointer.group(1))
        elif last_ident(s[:first]):   # a prototype
            declared.add(last_ident(s[:first]))
        return
    for part in split_top(s):
        part = part.split("=")[0].replace("INIT", "")
        name = last_ident(part)
        if name:
            into.add(name)


class Tree:
    def __init__(self, texts):
        """texts: {path: source} of every binding file. A name belongs to
        the folder that defines it: a function or a variable where it is
        defined outside static scope, a macro, a type or an enum constant
        in the folder's headers (a declaration alone makes no owner)."""
        self.texts = texts
        self.stripped = {p: strip(t) for p, t in texts.items()}
        self.owner = {}
        self.local = {}
        for path, text in self.stripped.items():
            public, static, _ = definitions(text)
            self.local[path] = public | static
            folder = folder_of(path)
            if folder in ALLOWED and os.path.basename(path) != INIT:
                for name in (public | static) if path.endswith(".h") else public:
                    self.owner.setdefault(name, folder)

    def violations(self, path):
        """What path includes or names that its folder may not use."""
        folder = folder_of(path)
        if os.path.basename(path) == INIT and folder == "root":
            return []
        allowed = ALLOWED[folder] | {folder}
        bad = []
        for name, target in includes(path, self.texts[path]):
            if target is None:
                bad.append("includes %s, which is nowhere" % name)
                continue
            to = folder_of(target)
            if to != "core" and to not in allowed and os.path.basename(target) != INIT:
                bad.append("includes %s (of %s/)" % (name, to))
        text = re.sub(r"^\s*#\s*include.*$", "", self.stripped[path], flags=re.M)
        for name in sorted(set(IDENT.findall(text)) - self.local[path]):
            to = self.owner.get(name)
            if to and to not in allowed:
                bad.append("names %s (of %s/)" % (name, to))
        return bad


@functools.lru_cache(maxsize=None)
def read_tree():
    texts = {}
    for path in binding_files():
        with open(path, encoding="utf-8") as f:
            texts[path] = f.read()
    return Tree(texts)


def test_the_folders_say_what_is_where():
    for folder in FOLDERS:
        assert glob.glob(os.path.join(BINDING, folder, "*.c")), "src/binding/%s/ has no C file" % folder
        assert os.path.exists(os.path.join(BINDING, folder, folder + ".h")), \
            "src/binding/%s/ has no %s.h (what the folder offers the others)" % (folder, folder)
    top = {os.path.basename(p) for p in glob.glob(os.path.join(BINDING, "*")) if os.path.isfile(p)}
    assert top <= ROOT_FILES, "files at the top of src/binding beside the init and ua.h: %s" % sorted(
        top - ROOT_FILES)


@pytest.mark.parametrize("path", [os.path.relpath(p, BINDING) for p in binding_files()])
def test_no_folder_reaches_above_itself_or_into_the_other_api(path):
    tree = read_tree()
    assert tree.violations(os.path.join(BINDING, path)) == []


def test_the_check_sees_what_it_looks_for():
    """The check itself, on sources changed here: the loop calling v3's
    Task end by name (declared in ua.h, as the flat tree had it), including
    v3's header, using 2.0's WaitFor; v3 reaching into v2; io into v3. Each
    is reported."""
    tree = read_tree()
    ua_h = os.path.join(BINDING, "ua.h")
    loop_c = os.path.join(BINDING, "loop", "loop.c")
    v3_task = os.path.join(BINDING, "v3", "task.c")
    io_ws = os.path.join(BINDING, "io", "ws.c")
    changed = dict(tree.texts)
    changed[ua_h] = tree.texts[ua_h].replace(
        "#endif", "int ua_v3_task_end(void *, void *, int, void *, void *);\n#endif")
    changed[loop_c] = ('#include "v3/internal.h"\n' + tree.texts[loop_c]
                       + "\nstatic int f(LoopObject *l, ua_task *t)\n{\n    ua_wait_for_new(NULL, 0);\n"
                         "    return ua_v3_task_end(l, t, PYGEN_RETURN, NULL, NULL);\n}\n")
    changed[v3_task] = tree.texts[v3_task] + "\nstatic void g(void)\n{\n    ua_sync_waiter(NULL, NULL, NULL);\n}\n"
    changed[io_ws] = tree.texts[io_ws] + "\nstatic int h(void)\n{\n    return ua_v3_current() != NULL;\n}\n"
    bad = Tree(changed)
    assert "names ua_v3_task_end (of v3/)" in bad.violations(ua_h)
    assert "includes v3/internal.h (of v3/)" in bad.violations(loop_c)
    assert "names ua_v3_task_end (of v3/)" in bad.violations(loop_c)
    assert "names ua_wait_for_new (of v2/)" in bad.violations(loop_c)
    assert "names ua_sync_waiter (of v2/)" in bad.violations(v3_task)
    assert "names ua_v3_current (of v3/)" in bad.violations(io_ws)
