"""What a receipt printer's code page can print, from any text a person or the catalogue wrote.

    printable("Remise « fidèle » — 10 %\x1b\x1dV")   # 'Remise « fidèle » - 10 %'
    printable("Zoë’s “PLA” … 😀")                   # 'Zoë\\'s "PLA" ...'

Every text that reaches the ESC/POS printer passes through ``printable`` once, so the bytes
the printer gets are only the renderer's own commands and characters of CP858: an ESC or GS
typed in a discount reason can no longer open the drawer or cut the paper, "—" is no longer "?".
"""

from __future__ import annotations

import unicodedata

CODE_PAGE = "CP858"

# typographic characters → what CP858 has (it has « », é, ×, € but no dashes or curly quotes)
_TYPOGRAPHY = str.maketrans(
    {
        **dict.fromkeys("‐‑‒–—―−⁃", "-"),
        **dict.fromkeys("‘’‚‛′‵", "'"),
        **dict.fromkeys("“”„‟″‶", '"'),
        **dict.fromkeys("\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
                        "\u200a\u202f\u205f\u3000", " "),  # fmt: skip
        **dict.fromkeys("\t\n\r\v\f\x85\u2028\u2029", " "),  # one printed line per field
        "…": "...",
        "œ": "oe",
        "Ł": "L",
        "ł": "l",
        "Đ": "D",
        "đ": "d",
        "ı": "i",
        "Œ": "OE",
        "•": "-",
        "‹": "<",
        "›": ">",
    }
)
# dropped outright: controls (C0, C1, DEL: ESC and GS among them), format characters (bidi
# overrides, zero-width joiners), surrogates, private use, unassigned
_DROPPED = ("Cc", "Cf", "Cs", "Co", "Cn")


def _in_code_page(char: str) -> bool:
    try:
        char.encode(CODE_PAGE)
    except UnicodeEncodeError:
        return False
    return True


def _fold(char: str) -> str:
    """A character the code page has, or its decomposition ('ő' → 'o', 'ﬁ' → 'fi'), or '?'."""
    category = unicodedata.category(char)
    if category in _DROPPED:
        return ""
    if _in_code_page(char):
        return char
    parts = "".join(
        c for c in unicodedata.normalize("NFKD", char)
        if unicodedata.category(c) not in _DROPPED + ("Mn", "Me") and _in_code_page(c)
    )  # fmt: skip
    if parts:
        return parts
    # a symbol (emoji) or a lone accent is left out; a letter or digit shows that one was there
    return "" if category[0] in "SM" else "?"


def printable(text: str) -> str:
    """``text`` with only characters CP858 prints, on one line, without control characters."""
    composed = unicodedata.normalize("NFC", text)  # 'e' + U+0301 is 'é', which CP858 has
    return "".join(_fold(char) for char in composed.translate(_TYPOGRAPHY))
