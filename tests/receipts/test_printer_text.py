"""Printer text: whatever a person or the catalogue wrote, the printer gets CP858 and our commands only.

The command set is python-escpos 3.1's (escpos/constants.py): ESC @ init, ESC t n code page,
ESC ! / ESC E / ESC a / ESC M / ESC d one-byte arguments, GS V n cut, and the QR code as
GS ( k pL pH followed by pL + 256 pH bytes (Epson ESC/POS reference, "GS ( k").
"""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from billing.ledger.chain import canonical, load
from billing.ledger.documents import Document
from billing.ledger.printable import CODE_PAGE, printable
from billing.ledger.printing import render_receipt
from billing.ledger.receipts import close_with_receipt
from billing.presentation import DocumentView, customer_name, line_detail, unit_text
from billing.visits import add_discount
from tests.receipts.conftest import ORG, walk_in

ONE_BYTE_ARGUMENT = {b"\x1bt", b"\x1b!", b"\x1bE", b"\x1ba", b"\x1bM", b"\x1bd", b"\x1dV", b"\x1d!"}
HOSTILE = list("\x1b\x1d\x00\x07\x0c\x7f\x85\x9b\t\n\r—–‒―−’‘‚“”„…\u00a0\u202f\u2009\u200b\u202e\ufeff😀👍🏽🇫🇷€«»×°")


def text_of(data: bytes) -> str:
    """The printed text of a receipt; fails on any byte that is neither text nor our own command."""
    text, i = bytearray(), 0
    while i < len(data):
        two = data[i : i + 2]
        if two == b"\x1b@":
            i += 2
        elif two in ONE_BYTE_ARGUMENT:
            i += 3
        elif data[i : i + 3] == b"\x1d(k":
            i += 5 + data[i + 3] + 256 * data[i + 4]
        else:
            byte = data[i]
            assert byte == 0x0A or 0x20 <= byte != 0x7F, f"stray control byte {byte:#04x} at {i}"
            text.append(byte)
            i += 1
    return text.decode(CODE_PAGE)


@pytest.mark.parametrize(
    ("typed", "printed"),
    [
        ("PLA — 12 g", "PLA - 12 g"),
        ("10–12 h", "10-12 h"),
        ("l’atelier ‘ici’", "l'atelier 'ici'"),
        ("“Bois”", '"Bois"'),
        ("et puis…", "et puis..."),
        ("1\u202f234,50\u00a0€", "1 234,50 €"),  # what Babel's French number formatting emits
        ("Łukasz Dvořák Ørsted œuvre", "Lukasz Dvorák Ørsted oeuvre"),
        ("e\u0301te\u0301", "été"),  # decomposed accents typed on a Mac
        ("ﬁlament", "filament"),
        ("tiroir\x1bp\x00\x19\x19 coupe\x1dV\x00", "tiroirp coupeV"),
        ("ligne\nsuivante\tici", "ligne suivante ici"),
        ("\u202egnp.exe\u200b", "gnp.exe"),
        ("merci 😀👍🏽", "merci "),
        ("Été « 20 % » × 3 €", "Été « 20 % » × 3 €"),
    ],
)
def test_printable_maps_typography_and_drops_control_characters(typed: str, printed: str) -> None:
    assert printable(typed) == printed
    printed.encode(CODE_PAGE)  # strict: every character is on the code page


def test_the_invoice_pdf_font_keeps_what_windows_1252_has_and_nothing_else() -> None:
    assert printable("Zoë’s “PLA” — 1\u202f234 €…\x1b\x1dV😀", code_page="cp1252") == "Zoë’s “PLA” — 1 234 €…V"
    assert printable("Łódź ő", code_page="cp1252") == "Lódz o"


@pytest.mark.parametrize(
    ("quantity", "unit", "text"),
    [("1", "plaque", "plaque"), ("2", "plaque", "plaques"), ("0.5", "plaque", "plaque"),
     ("1.5", "plaque", "plaque"), ("3", "séance", "séances"), ("2", "min", "min"), ("12.5", "g", "g"),
     ("2", "15 min", "15 min"), ("2", "feuille A4", "feuilles A4"), ("4", "pièces", "pièces")],
)  # fmt: skip
def test_units_take_the_french_plural(quantity: str, unit: str, text: str) -> None:
    assert unit_text(unit, Decimal(quantity)) == text


def test_details_name_the_unit_on_the_price() -> None:
    assert line_detail("2.000", "plaque", "4.5") == "2 plaques × 4,50 €/plaque"
    assert line_detail("12.676", "g", "0.05") == "12,676 g × 0,05 €/g"
    assert line_detail("3.000", "15 min", "0.25") == "3 × 15 min à 0,25 €"
    assert line_detail("1.000", "", "-1.00") == ""


def _document(db: Session) -> Document:
    visit = walk_in(db, ("plywood-3mm", "2"), ("mdf-3mm", "1"), name="Camille — l’atelier")
    add_discount(db, visit, Decimal("1"), "fidélité", actor="alice")
    db.commit()
    return close_with_receipt(db, visit, "card", actor="alice", organisation=ORG)


def _lines(db: Session, document: Document, columns: int = 42) -> list[str]:
    view = DocumentView.of(document, customer=customer_name(document.visit), tz=ORG.zone)
    return text_of(render_receipt(view, columns=columns)).split("\n")


def test_a_receipt_prints_plurals_units_and_a_discount_on_one_line(db: Session) -> None:
    lines = _lines(db, _document(db))
    assert any(line.startswith("  2 plaques × 4,50 €/plaque") and line.endswith(" 9,00 €") for line in lines)
    assert any(line.startswith("  1 plaque × 3,00 €/plaque") for line in lines)
    assert any(line.startswith("Remise : fidélité ") and line.endswith(" -1,00 €") for line in lines)
    assert not any("× -1,00" in line for line in lines)
    assert "Client : Camille - l'atelier" in lines
    assert not any("?" in line for line in lines)


def _hostile_view(base: DocumentView, text: str) -> DocumentView:
    """The document with ``text`` in every field a person or the catalogue wrote."""
    content = load(canonical(base.content))
    for line in content["lines"]:
        line["description"], line["unit"] = text, text[:20]
    content["seller"] = {"name": text, "address": f"{text}\n{text}", "siret": text}
    content["reason"] = text
    document = Document(series="A", number=1, kind="credit_note", content=json.dumps(content),
                        hash="ab" * 32)  # fmt: skip
    view = DocumentView.of(document, customer=text, tz=ORG.zone)
    return replace(view, credit_note_of=text, payment=f"{text}\n{text}", tax=(text,))


hostile_text = st.text(alphabet=st.one_of(st.characters(), st.sampled_from(HOSTILE)), max_size=80)


def test_hostile_text_in_every_field_prints_only_code_page_text(db: Session) -> None:
    base = DocumentView.of(_document(db), customer=None, tz=ORG.zone)

    @settings(max_examples=200, deadline=None)
    @given(text=hostile_text, columns=st.sampled_from([42, 48]))
    def check(text: str, columns: int) -> None:
        data = render_receipt(_hostile_view(base, text), columns=columns, copy=1)
        printed = text_of(data)  # fails on an ESC, GS or any other control byte in the text
        assert [line for line in printed.split("\n") if len(line) > columns] == []
        assert set(printable(text)) - {" "} <= set(printed)
        assert data.endswith(b"\x1dV\x00")

    check()
