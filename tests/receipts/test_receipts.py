from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from billing.errors import InvalidOperation
from billing.ledger.chain import verify
from billing.ledger.documents import Chain, Document
from billing.ledger.receipts import close_with_receipt, issue_credit_note
from billing.models import Customer, Visit
from tests.receipts.conftest import ORG, company_visit, walk_in


def test_closing_a_visit_issues_numbered_receipts_in_order(any_db: Session) -> None:
    first = walk_in(any_db, ("plywood-3mm", "2"))
    second = walk_in(any_db, ("mdf-3mm", "1"))
    a = close_with_receipt(any_db, first, "cash", actor="alice", organisation=ORG)
    b = close_with_receipt(any_db, second, "card", actor="alice", organisation=ORG)
    assert (a.reference, b.reference) == ("R-000001", "R-000002")
    assert (a.total_cents, b.total_cents) == (900, 300)
    assert b.prev_hash == a.hash
    visit = any_db.get(Visit, first)
    assert visit is not None and visit.state == "closed" and visit.payment_method == "cash"
    assert verify(any_db) is None


def test_a_closed_visit_cannot_get_a_second_receipt(db: Session) -> None:
    visit = walk_in(db, ("plywood-3mm", "1"))
    close_with_receipt(db, visit, "cash", actor="alice", organisation=ORG)
    with pytest.raises(InvalidOperation, match="closed"):
        close_with_receipt(db, visit, "cash", actor="alice", organisation=ORG)
    chain = db.get(Chain, "R")
    assert chain is not None and chain.last_number == 1


def test_hashed_content_names_nobody(db: Session) -> None:
    visit = walk_in(db, ("plywood-3mm", "1"), name="Camille Durand")
    doc = close_with_receipt(db, visit, "card", actor="alice", organisation=ORG)
    content = json.loads(doc.content)
    assert "Camille" not in doc.content
    assert content["seller"] == {"name": ORG.name, "address": ORG.address, "siret": ORG.siret}
    assert content["tax"] == {
        "regime": "franchise",
        "mention": "TVA non applicable, art. 293 B du CGI",
    }
    assert content["lines"][0]["description"] == "Contreplaqué peuplier 3 mm 600×300"


def test_a_company_gets_an_invoice_from_its_own_series(db: Session) -> None:
    receipt = close_with_receipt(
        db, walk_in(db, ("mdf-3mm", "1")), "cash", actor="alice", organisation=ORG
    )
    invoice = close_with_receipt(db, company_visit(db), "transfer", actor="alice", organisation=ORG)
    assert (receipt.reference, invoice.reference, invoice.kind) == (
        "R-000001",
        "F-000001",
        "invoice",
    )
    content = json.loads(invoice.content)
    # the company buyer is frozen into the invoice (it must be kept ten years); its contact is not
    assert content["customer_ref"] == "C0007" and content["buyer"]["name"] == "Atelier Bois & Fils SARL"
    assert "Léa" not in invoice.content
    assert content["invoice"]["recovery_indemnity_cents"] == 4000
    assert verify(db) is None


def test_a_credit_note_cancels_a_receipt_without_touching_it(any_db: Session) -> None:
    original = close_with_receipt(any_db, walk_in(any_db, ("plywood-5mm", "2")), "card", actor="alice",
                                  organisation=ORG)  # fmt: skip
    before = (original.content, original.hash)
    note = issue_credit_note(any_db, original.id, "erreur de tarif", actor="bob")
    assert note.reference == "A-000001" and note.kind == "credit_note"
    assert note.total_cents == -1200 and note.payment_method == "card"
    assert note.credit_note_of == original.id
    content = json.loads(note.content)
    assert content["credit_note_of"] == "R-000001" and content["reason"] == "erreur de tarif"
    assert [line["amount_cents"] for line in content["lines"]] == [-1200]
    any_db.refresh(original)
    assert (original.content, original.hash) == before
    with pytest.raises(InvalidOperation, match="nothing of R-000001 is left to give back"):
        issue_credit_note(any_db, original.id, "encore", actor="bob")
    with pytest.raises(InvalidOperation, match="is a credit note"):
        issue_credit_note(any_db, note.id, "annuler l'avoir", actor="bob")
    assert verify(any_db) is None


def test_vat_regime_splits_the_total(db: Session) -> None:
    vat = ORG.__class__(
        name=ORG.name, address=ORG.address, siret=ORG.siret, tax_regime="vat", legal_mention=""
    )
    doc = close_with_receipt(
        db, walk_in(db, ("plywood-3mm", "1")), "cash", actor="alice", organisation=vat
    )
    assert json.loads(doc.content)["tax"] == {
        "regime": "vat", "rate": "20", "mention": "", "net_cents": 375, "vat_cents": 75, "gross_cents": 450,
    }  # fmt: skip


def _issue_three(db: Session) -> list[Document]:
    return [
        close_with_receipt(db, walk_in(db, (code, "1")), "cash", actor="alice", organisation=ORG)
        for code in ("plywood-3mm", "plywood-5mm", "mdf-3mm")
    ]


def test_a_document_altered_in_the_database_breaks_verify_and_is_named(any_db: Session) -> None:
    docs = _issue_three(any_db)
    altered = docs[1].content.replace('"amount_cents":600', '"amount_cents":60')
    assert altered != docs[1].content
    any_db.execute(
        text("UPDATE documents SET content = :c WHERE id = :i"), {"c": altered, "i": docs[1].id}
    )
    any_db.commit()
    broken = verify(any_db)
    assert broken is not None and broken.link == "R-000002"
    assert "content altered" in broken.reason


def test_a_total_changed_beside_its_content_is_caught(db: Session) -> None:
    docs = _issue_three(db)
    db.execute(text("UPDATE documents SET total_cents = 1 WHERE id = :i"), {"i": docs[0].id})
    db.commit()
    broken = verify(db)
    assert broken is not None and broken.link == "R-000001" and "total_cents" in broken.reason


def test_a_deleted_document_breaks_the_chain_after_it(db: Session) -> None:
    docs = _issue_three(db)
    db.execute(text("DELETE FROM documents WHERE id = :i"), {"i": docs[1].id})
    db.commit()
    broken = verify(db)
    assert broken is not None and broken.link == "R-000003"


def test_erasing_a_customer_keeps_the_chain_whole(db: Session) -> None:
    invoice = close_with_receipt(db, company_visit(db), "transfer", actor="alice", organisation=ORG)
    customer = db.scalars(select(Customer).where(Customer.ref == "C0007")).one()
    customer.name = customer.email = customer.company_name = customer.company_address = None
    visit = db.get(Visit, invoice.visit_id)
    assert visit is not None
    visit.label = "Client effacé"
    db.commit()
    assert verify(db) is None
