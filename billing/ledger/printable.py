"""What a receipt printer's code page (or a PDF's core font) can show, from any text people wrote.

    printable("Remise « fidèle » — 10 %\x1b\x1dV")   # 'Remise « fidèle » - 10 %V'
    printable("Zoë’s “PLA” … 😀")                   # 'Zoë\\'s "PLA" ... '
    printable("Zoë’s “PLA”", code_page="cp1252")     # 'Zoë’s “PLA”' (Windows-1252 has them)

Every text that reaches the ESC/POS printer passes through ``printable`` once, so the bytes
the printer gets are only the renderer's own commands and characters of CP858: an ESC or GS
typed in a discount reason can no longer open the drawer or cut the paper, "—" is no longer "?".
The invoice PDF's core font (Windows-1252) goes through it too.
"""

from __future__ import annotations

import unicodedata

CODE_PAGE = "CP858"

# always: every kind of space (Babel's French numbers use U+00A0 and U+202F) and line break
# becomes a plain space — a field prints on its own lines, and CP858's 0xFF is not a space
# to every printer
_SPACES = str.maketrans(
    dict.fromkeys("\t\n\r\v\f\x85\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
                  "\u2009\u200a\u2028\u2029\u202f\u205f\u3000", " ")  # fmt: skip
)
# when the code page lacks them (CP858 has « », é, ×, € but no dashes or curly quotes)
_TYPOGRAPHY = {
    **dict.fromkeys("‐‑‒–—―−⁃•", "-"),
    **dict.fromkeys("‘’‚‛′‵", "'"),
    **dict.fromkeys("“”„‟″‶", '"'),
    "…": "...",
    "œ": "oe",
    "Œ": "OE",
    "Ł": "L",
    "ł": "l",
    "Đ": "D",
    "đ": "d",
    "ı": "i",
    "‹": "<",
    "›": ">",
}
# dropped outright: controls (C0, C1, DEL: ESC and GS among them), format characters (bidi
# overrides, zero-width joiners), surrogates, private use, unassigned
_DROPPED = ("Cc", "Cf", "Cs", "Co", "Cn")


def _in_code_page(char: str, code_page: str) -> bool:
    try:
        char.encode(code_page)
    except UnicodeEncodeError:
        return False
    return True


def _fold(char: str, code_page: str) -> str:
    """A character the code page has, its usual stand-in ('—' → '-'), its decomposition
    ('ő' → 'o', 'ﬁ' → 'fi'), nothing for a symbol (emoji), or '?' for another letter."""
    category = unicodedata.category(char)
    if category in _DROPPED:
        return ""
    if _in_code_page(char, code_page):
        return char
    if char in _TYPOGRAPHY:
        return _TYPOGRAPHY[char]
    parts = "".join(
        c for c in unicodedata.normalize("NFKD", char)
        if unicodedata.category(c) not in _DROPPED + ("Mn", "Me") and _in_code_page(c, code_page)
    )  # fmt: skip
    if parts:
        return parts
    return "" if category[0] in "SM" else "?"


def printable(text: str, *, code_page: str = CODE_PAGE) -> str:
    """``text`` with only characters ``code_page`` has, on one line, without control characters."""
    composed = unicodedata.normalize("NFC", text)  # 'e' + U+0301 is 'é', which CP858 has
    return "".join(_fold(char, code_page) for char in composed.translate(_SPACES))
