# probe(1) in troff (man macros), made from the binary's own help texts, so
# that the page says what the packaged binary does (scripts/package runs it).
#
#   awk -v version=0.1.0 -v date=2026-01-31 -f packaging/manpage.awk \
#       main-help.txt top-help.txt packaging/manpage-sections.txt > probe.1
#
# The first file is `probe --help`, the second `probe top --help`, the
# third (optional) the sections help texts do not carry: OUTPUT FORMAT,
# SIGNALS, EXIT STATUS, FILES... (its own format: see that file). Each help
# text is:
#
#   usage: probe FORM...   description          (one or more forms; a form's
#          probe FORM...   description           description may go on over
#                          ...more description   more-indented lines)
#   (blank)
#   options:                                     (a "header:" line)
#     -x, --long ARG   description               (an option: indent < 8)
#                      more description          (deeper: continuation)
#   (blank)
#   A paragraph of prose.                        (anything else)
#
# Sections: NAME (the first form's description), SYNOPSIS (every form of
# the first file), DESCRIPTION (each form with its description), OPTIONS
# (the options of each file under a subsection named after its first form,
# with that form's description and the file's paragraphs), then the third
# file's sections in its order.
#
# Text is escaped for troff: backslashes become \e, every "-" becomes \-
# (a minus: what one types, not a typographic hyphen), and a line that
# would begin with "." or "'" (a request to troff) begins with \& instead.
# POSIX awk only (Debian's default awk is mawk).

function esc(s) {
    gsub(/\\/, "\\e", s)
    gsub(/-/, "\\-", s)
    return s
}

# A line of running text: escaped, and never read as a request.
function textline(s) {
    s = esc(s)
    if (s ~ /^[.']/)
        s = "\\&" s
    return s
}

function trim(s) {
    sub(/^[ \t]+/, "", s)
    sub(/[ \t]+$/, "", s)
    return s
}

function indent_of(s) {
    match(s, /^ */)
    return RLENGTH
}

# One word of a command form or option spec: options bold, placeholders
# (PID, FILE, [options]) italic, literal words (probe, top) bold when
# `literal`; punctuation around them roman.
function word(w, literal,    pre, post, core) {
    pre = ""; post = ""
    while (w ~ /^[[(]/) { pre = pre substr(w, 1, 1); w = substr(w, 2) }
    while (w ~ /[]),.]$/) { post = substr(w, length(w)) post; w = substr(w, 1, length(w) - 1) }
    if (w == "")
        return esc(pre post)
    core = esc(w)
    if (w ~ /^-/ || (literal && w ~ /^[a-z][a-z0-9]*$/ && pre == ""))
        core = "\\fB" core "\\fR"
    else
        core = "\\fI" core "\\fR"
    return esc(pre) core esc(post)
}

function words(s, literal,    n, i, parts, out) {
    n = split(s, parts, / +/)
    out = ""
    for (i = 1; i <= n; i++)
        if (parts[i] != "")
            out = out (out == "" ? "" : " ") word(parts[i], literal)
    return out
}

# Appends line `s` to the text kept under `key`.
function add(key, s) {
    # (Not `body[key] = (key in body) ? ...`: mawk makes the element
    # before it tests for it.)
    if (key in body)
        body[key] = body[key] "\n" s
    else
        body[key] = s
}

FNR == 1 {
    file++
    mode = "start"
    blocks[file] = 0
    forms[file] = 0
    paras[file] = 0
}

# The third file: SECTION lines, items ("  term  text", indent 2, more of
# the text at indent 4 or more) and paragraphs (no indent). Each piece is
# kept in order as a troff line ("T" a term, "D" text of an item, "P" a
# new paragraph, "L" a line of it).
file >= 3 {
    if ($0 ~ /^#/)
        next
    if ($0 ~ /^ *$/) { xmode = ""; next }
    if ($0 ~ /^[A-Z][A-Z ]*[A-Z]$/) {
        xsection[++xsections] = $0
        xitems[xsections] = 0
        xmode = ""
        next
    }
    if (xsections == 0) {
        print "manpage.awk: text before the first SECTION in " FILENAME > "/dev/stderr"
        exit 1
    }
    n = ++xitems[xsections]
    if (indent_of($0) == 2 && match(substr($0, 3), /  +/)) {
        xkind[xsections, n] = "T"
        xtext[xsections, n] = substr($0, 3, RSTART - 1)
        n = ++xitems[xsections]
        xkind[xsections, n] = "D"
        xtext[xsections, n] = trim(substr($0, 3 + RSTART + RLENGTH - 1))
        xmode = "item"
    } else if (indent_of($0) >= 4 && xmode == "item") {
        xkind[xsections, n] = "D"
        xtext[xsections, n] = trim($0)
    } else if (indent_of($0) == 0) {
        xkind[xsections, n] = (xmode == "para") ? "L" : "P"
        xtext[xsections, n] = $0
        xmode = "para"
    } else {
        print "manpage.awk: " FILENAME ":" FNR ": neither an item, its text nor a paragraph" > "/dev/stderr"
        exit 1
    }
    next
}

# usage: the command forms, each "probe ...  description".
mode == "start" && /^usage: / {
    mode = "usage"
    sub(/^usage: /, "       ")
}

mode == "usage" {
    if ($0 ~ /^ *$/) { mode = "between"; next }
    line = $0
    if (line ~ /^       probe( |$)/) {
        line = trim(line)
        n = ++forms[file]
        if (match(line, /  +/)) {
            form[file, n] = substr(line, 1, RSTART - 1)
            add("formdesc" SUBSEP file SUBSEP n, trim(substr(line, RSTART + RLENGTH)))
        } else
            form[file, n] = line
    } else if (forms[file] > 0)
        add("formdesc" SUBSEP file SUBSEP forms[file], trim(line))
    next
}

/^ *$/ {
    if (mode == "options") mode = "between"
    if (mode == "para") mode = "between"
    next
}

# "options:" and any other "header:" line begin a block of options.
mode != "para" && /^[A-Za-z][A-Za-z ]*:$/ {
    mode = "options"
    b = ++blocks[file]
    header[file, b] = substr($0, 1, length($0) - 1)
    items[file, b] = 0
    next
}

mode == "options" && indent_of($0) < 8 && $0 ~ /^ *-/ {
    i = ++items[file, b]
    raw[file, b, i] = $0
    next
}

mode == "options" && indent_of($0) >= 8 && items[file, b] > 0 {
    c = indent_of($0)
    colcount[file, b, c]++
    add("optdesc" SUBSEP file SUBSEP b SUBSEP items[file, b], trim($0))
    next
}

# Prose: paragraphs (lines up to a blank one).
{
    if (mode != "para") {
        mode = "para"
        paras[file]++
    }
    add("para" SUBSEP file SUBSEP paras[file], trim($0))
}

# Splits option line `s` into spec[1] and spec[2] (its description): at
# the first run of two or more spaces, else at the block's description
# column `col` if a space ends the spec there.
function split_option(s, col, parts,    t, lead) {
    lead = indent_of(s)
    t = substr(s, lead + 1)
    if (match(t, /  +/)) {
        parts[1] = substr(t, 1, RSTART - 1)
        parts[2] = trim(substr(t, RSTART + RLENGTH))
    } else if (col > lead + 1 && length(s) > col && substr(s, col, 1) == " " && substr(s, col + 1, 1) != " ") {
        parts[1] = trim(substr(s, 1, col))
        parts[2] = trim(substr(s, col + 1))
    } else {
        parts[1] = trim(t)
        parts[2] = ""
    }
}

function desc_column(f, b,    c, best, bestn) {
    best = 0; bestn = 0
    for (c = 8; c <= 60; c++)
        if (((f, b, c) in colcount) && colcount[f, b, c] > bestn) {
            best = c; bestn = colcount[f, b, c]
        }
    return best
}

function print_lines(s,    n, i, l) {
    n = split(s, l, "\n")
    for (i = 1; i <= n; i++)
        if (l[i] != "")
            print textline(l[i])
}

function print_form(f, n,    k) {
    k = "formdesc" SUBSEP f SUBSEP n
    print_lines((k in body) ? body[k] : "")
}

END {
    if (file < 1 || forms[1] < 1) {
        print "manpage.awk: no \"usage: probe ...\" line in the help text" > "/dev/stderr"
        exit 1
    }
    print ".\\\" Generated by scripts/package from `probe --help` and `probe top --help`"
    print ".\\\" of probe " version ": do not edit."
    printf ".TH PROBE 1 \"%s\" \"probe %s\" \"User Commands\"\n", date, esc(version)
    # No hyphenation, ragged right: option names and values stay whole.
    print ".nh"
    print ".ad l"
    print ".SH NAME"
    first = body["formdesc" SUBSEP 1 SUBSEP 1]
    sub(/\n.*/, "", first)
    print "probe \\- " textline(first)
    print ".SH SYNOPSIS"
    print ".nf"
    for (n = 1; n <= forms[1]; n++)
        print words(form[1, n], 1)
    print ".fi"
    print ".SH DESCRIPTION"
    for (n = 1; n <= forms[1]; n++) {
        print ".TP"
        print words(form[1, n], 1)
        print_form(1, n)
    }
    print ".SH OPTIONS"
    for (f = 1; f <= file; f++) {
        if (forms[f] > 0) {
            heading = esc(form[f, 1])
            gsub(/"/, "\\(dq", heading)
            printf ".SS \"%s\"\n", heading
            if (f > 1) {
                print ".PP"
                print_form(f, 1)
            }
        }
        for (b = 1; b <= blocks[f]; b++) {
            if (header[f, b] != "options") {
                print ".PP"
                print textline(header[f, b]) ":"
            }
            col = desc_column(f, b)
            for (i = 1; i <= items[f, b]; i++) {
                split_option(raw[f, b, i], col, spec)
                print ".TP"
                print words(spec[1], 0)
                if (spec[2] != "")
                    print textline(spec[2])
                k = "optdesc" SUBSEP f SUBSEP b SUBSEP i
                if (k in body)
                    print_lines(body[k])
            }
        }
        for (p = 1; p <= paras[f]; p++) {
            print ".PP"
            print_lines(body["para" SUBSEP f SUBSEP p])
        }
    }
    for (x = 1; x <= xsections; x++) {
        printf ".SH %s\n", xsection[x]
        for (i = 1; i <= xitems[x]; i++) {
            if (xkind[x, i] == "T") {
                print ".TP"
                print "\\fB" esc(xtext[x, i]) "\\fR"
            } else if (xkind[x, i] == "P") {
                print ".PP"
                print textline(xtext[x, i])
            } else
                print textline(xtext[x, i])
        }
    }
}
