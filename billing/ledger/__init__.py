"""The ledger: numbered documents, their chain, seals and anchors, closures, and what shows them.

- ``documents``: the tables (documents, chains, closures, print jobs) and the series.
- ``receipts``: closing a visit to a receipt or an invoice; credit notes.
- ``chain``: the hash chain, closures per day, month and year, and ``verify``.
- ``seals``: the keyed seal on every record and the anchor file outside the database.
- ``invoice``, ``printing``, ``export``: a document as HTML/PDF, on the ESC/POS printer, in CSV.
- ``cli``: ``fabmeter ledger …``.
"""
