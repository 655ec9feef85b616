"""Customers (staff): people and companies, listed with a search, created and edited.

Every change goes through ``billing.customers`` (checked, audited); each of its problems is
shown, translated, beside the field it names. Post/redirect/get: a saved form redirects to the
customer's page, so reloading it saves nothing twice.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from billing.customers import InvalidCustomer, checked_details, save_customer, search_customers
from billing.models import Customer
from dashboard.forms import CustomerForm
from dashboard.store import ledger

bp = Blueprint("customers", __name__, url_prefix="/customers")


def show_problems(form: CustomerForm, err: InvalidCustomer) -> None:
    """Each problem beside its field, in the page's language."""
    for field, (message, values) in err.problems.items():
        form[field].errors = [*form[field].errors, _(message, **values)]


def checked(form: CustomerForm) -> dict[str, str] | None:
    """The form's details if billing takes them; else None, the problems on the form."""
    try:
        checked_details(form.details())
    except InvalidCustomer as err:
        show_problems(form, err)
        return None
    return form.details()


@bp.route("/")
def index() -> ResponseReturnValue:
    query = request.args.get("q", "")[:100]
    return render_template("customers/index.html", customers=search_customers(ledger(), query), query=query)


@bp.route("/new", methods=["GET", "POST"])
def new() -> ResponseReturnValue:
    form = CustomerForm()
    if not form.is_submitted():
        form.kind.data = request.args.get("kind") if request.args.get("kind") in ("person", "company") else "person"
    return _save(form, None)


@bp.route("/<int:customer_id>", methods=["GET", "POST"])
def edit(customer_id: int) -> ResponseReturnValue:
    customer = ledger().get(Customer, customer_id)
    if customer is None or customer.erased_at is not None:
        abort(404)
    form = CustomerForm(obj=None if request.method == "POST" else customer)
    return _save(form, customer)


def _save(form: CustomerForm, customer: Customer | None) -> ResponseReturnValue:
    if not form.validate_on_submit() or checked(form) is None:
        status = 400 if form.is_submitted() else 200
        return render_template("customers/edit.html", form=form, customer=customer), status
    db = ledger()
    saved = save_customer(db, checked_details(form.details()), actor=str(current_user.username),
                          customer_id=customer.id if customer else None)  # fmt: skip
    db.commit()
    flash(_("Customer %(ref)s saved.", ref=saved.ref), "ok")
    return redirect(url_for("customers.edit", customer_id=saved.id))
