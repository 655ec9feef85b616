"""A document as the receipt printer printed it: its text for a page or an e-mail, and a PDF of it.

    data = render_receipt(view, columns=42)      # the bytes the printer gets
    printed_text(data)                           # 'Fablab du Val\n1 place …\nTICKET R-000012\n…'
    receipt_pdf(printed_text(data), title="TICKET R-000012")   # 80 mm wide, monospaced

The text comes from the very bytes sent to the printer, so what staff show or send is what
the paper says (the QR code aside, which the PDF and the page give as its text).
"""

from __future__ import annotations

from fpdf import FPDF

from billing.ledger.printable import CODE_PAGE, printable

# python-escpos 3.1's commands in our receipts (escpos/constants.py): ESC @, then ESC or GS
# with one argument byte, and GS ( k pL pH <pL + 256 pH bytes> for the QR code
_ONE_ARGUMENT = {b"\x1bt", b"\x1b!", b"\x1bE", b"\x1ba", b"\x1bM", b"\x1bd", b"\x1dV", b"\x1d!"}


def printed_text(data: bytes) -> str:
    """The text lines of ESC/POS bytes, without the commands; a trailing newline is dropped."""
    text, i = bytearray(), 0
    while i < len(data):
        if data[i : i + 2] == b"\x1b@":
            i += 2
        elif data[i : i + 2] in _ONE_ARGUMENT:
            i += 3
        elif data[i : i + 3] == b"\x1d(k" and i + 5 <= len(data):
            i += 5 + data[i + 3] + 256 * data[i + 4]
        else:
            if data[i] == 0x0A or data[i] >= 0x20:
                text.append(data[i])
            i += 1
    return text.decode(CODE_PAGE).rstrip("\n")


def receipt_pdf(text: str, *, title: str) -> bytes:
    """The printed text on a strip of 80 mm paper, in Courier, as long as the receipt."""
    lines = text.split("\n")
    pdf = FPDF(unit="mm", format=(80, max(60, 12 + 4 * len(lines))))
    pdf.core_fonts_encoding = "cp1252"
    pdf.set_title(title)
    pdf.set_margins(4, 4)
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.set_font("courier", size=7.5)  # 42 columns of Courier 7.5 pt fill 72 mm
    for line in lines:
        pdf.cell(w=0, h=4, text=printable(line, code_page="cp1252"), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
