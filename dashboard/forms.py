"""Every form of the dashboard (Flask-WTF: each carries a CSRF token).

Validators return form errors shown beside the field; nothing a user types can cause a 500.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from babel import Locale
from babel.numbers import format_decimal
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    Optional,
    Regexp,
    ValidationError,
)

from billing.models import MACHINE_KINDS, PAYMENT_METHODS, ROLES, TIME_BASES
from billing.money import decimal_text, parse_decimal
from dashboard.labels import LABELS, label

IDENT = Regexp(r"^[a-z0-9][a-z0-9-]{0,62}$", message=_l("lowercase letters, digits and hyphens"))
CODE = Regexp(r"^[a-z0-9][a-z0-9._-]{0,39}$", message=_l("lowercase letters, digits, dots and hyphens"))


class Form(FlaskForm):  # type: ignore[misc]  # flask_wtf ships no type hints
    """A form with a CSRF token (Flask-WTF)."""


def _written(value: Decimal, places: int | None = None) -> str:
    """A number as the page's language writes it: '100 000', '0,01', '1' (not '1.000') in French."""
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places))
    locale = str(get_locale() or "fr")
    if locale == "fr":
        return decimal_text(value, places=places)
    return format_decimal(value if places else value.normalize(), locale=locale, decimal_quantization=False)


class AmountField(StringField):  # type: ignore[misc]  # wtforms ships no type hints
    """A decimal typed as people type it ('1,50', '1 234,50', '2,5'), parsed on the server.

    Rendered as a text input with ``inputmode="decimal"`` (a number input lets the browser
    reinterpret '1,50' as 150 where it has no French locale data); a value outside
    [minimum, maximum] is an error that names the range as the page's language writes it.
    """

    data: Any  # a Decimal once validated, None while empty

    def __init__(self, label: Any = None, validators: Any = None, *, places: int,
                 minimum: Decimal, maximum: Decimal, **kwargs: Any) -> None:  # fmt: skip
        render_kw = {"inputmode": "decimal", "autocomplete": "off", **kwargs.pop("render_kw", {})}
        super().__init__(label, validators, render_kw=render_kw, **kwargs)
        self.places, self.minimum, self.maximum = places, minimum, maximum

    def process_formdata(self, valuelist: list[str]) -> None:
        self.raw = valuelist[0] if valuelist else ""
        self.data = None
        if not self.raw.strip():
            return
        try:
            self.data = parse_decimal(self.raw, places=self.places)
        except ValueError as err:
            raise ValueError(_("“%(value)s” is not a number: write it like 1 234,50 (at most %(places)s decimals).",
                               value=self.raw.strip()[:40], places=self.places)) from err  # fmt: skip

    def pre_validate(self, form: Any) -> None:
        if self.data is not None and not self.minimum <= self.data <= self.maximum:
            raise ValidationError(_("Enter a number between %(low)s and %(high)s.",
                               low=_written(self.minimum), high=_written(self.maximum)))  # fmt: skip

    def _value(self) -> str:
        if self.raw_data:
            return str(self.raw_data[0])
        if not isinstance(self.data, Decimal):
            return ""
        return _written(self.data, 2 if self.places == 2 else None)  # money keeps its cents: 0,50


class CountField(AmountField):
    """A whole number ('1 200' seconds, 5 units) in the same text input as amounts; ``data`` is an int."""

    def __init__(self, label: Any = None, validators: Any = None, *, minimum: int, maximum: int,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(label, validators, places=0, minimum=Decimal(minimum), maximum=Decimal(maximum), **kwargs)

    def process_formdata(self, valuelist: list[str]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError as err:
            raise ValueError(_("“%(value)s” is not a whole number: write it like 1 200.",
                               value=self.raw.strip()[:40])) from err  # fmt: skip
        if self.data is not None:
            self.data = int(self.data)

    def _value(self) -> str:
        if self.raw_data:
            return str(self.raw_data[0])
        return _written(Decimal(self.data)) if isinstance(self.data, int) else ""


def payment_choices() -> list[tuple[str, str]]:
    return [(method, label(method, "payment")) for method in PAYMENT_METHODS]


class LoginForm(Form):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=80)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])
    next = HiddenField()
    submit = SubmitField(_l("Log in"))


class ActionForm(Form):
    """A button that only needs its CSRF token (log out, mark waiting, unlock)."""

    submit = SubmitField(_l("OK"))


class CheckInForm(Form):
    """A visitor: anonymous, named, or a customer chosen from the list or created below (``new``)."""

    customer = SelectField(_l("Customer"), validators=[Optional()], default="")
    name = StringField(_l("Name (empty for an anonymous visitor)"), validators=[Optional(), Length(max=200)])
    category = SelectField(_l("Category"), validators=[DataRequired()])
    with_pin = BooleanField(_l("Give a PIN"), default=True)
    badge = StringField(_l("Loan badge (scan or type)"), validators=[Optional(), Length(max=64)])
    submit = SubmitField(_l("Check in"))


def country_choices() -> list[tuple[str, str]]:
    """Every country by its two-letter code, named in the page's language, France first."""
    names = Locale.parse(str(get_locale() or "fr")).territories
    countries = sorted(((code, str(name)) for code, name in names.items()
                        if len(code) == 2 and code.isalpha()), key=lambda c: c[1])  # fmt: skip
    return [c for c in countries if c[0] == "FR"] + [c for c in countries if c[0] != "FR"]


class CustomerForm(Form):
    """A person or a company. Checked by ``billing.customers.checked_details``, whose problems
    land beside their fields; the fields here only bound the lengths."""

    kind = SelectField(_l("Customer"), choices=[("person", _l("A person")), ("company", _l("A company"))],
                       default="person")  # fmt: skip
    company_name = StringField(_l("Company name"), validators=[Length(max=200)])
    name = StringField(_l("Name (the person, or the company's contact)"), validators=[Length(max=200)])
    company_address = TextAreaField(_l("Address"), validators=[Length(max=500)], render_kw={"rows": 2})
    postcode = StringField(_l("Postcode"), validators=[Length(max=10)])
    city = StringField(_l("City"), validators=[Length(max=100)])
    country = SelectField(_l("Country"), default="FR")
    siren = StringField(_l("SIREN or SIRET"), validators=[Length(max=30)], render_kw={"inputmode": "numeric"})
    vat_number = StringField(_l("Intra-EU VAT number"), validators=[Length(max=30)])
    email = StringField(_l("E-mail"), validators=[Length(max=200)], render_kw={"type": "email"})
    submit = SubmitField(_l("Save"))

    DETAILS = ("kind", "company_name", "name", "company_address", "postcode", "city", "country",
               "siren", "vat_number", "email")  # fmt: skip

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.country.choices = country_choices()

    def details(self) -> dict[str, str]:
        return {name: self[name].data or "" for name in self.DETAILS}


class VisitCustomerForm(Form):
    """Bill an open visit to a customer of the list (or to none)."""

    customer = SelectField(_l("Bill to"), validators=[Optional()])
    submit = SubmitField(_l("Change the customer"))


class ItemForm(Form):
    item = SelectField(_l("Item"), validators=[DataRequired()])
    quantity = AmountField(_l("Quantity"), [InputRequired()], places=3, default=Decimal(1),
                           minimum=Decimal("0.001"), maximum=Decimal(10000))
    submit = SubmitField(_l("Add"))


class DiscountForm(Form):
    amount = AmountField(_l("Amount (€)"), [InputRequired()], places=2, minimum=Decimal("0.01"), maximum=Decimal(100000))  # fmt: skip
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=250)])
    submit = SubmitField(_l("Apply the discount"))


class AttachForm(Form):
    session = SelectField(_l("Unassigned session"), validators=[DataRequired()])
    submit = SubmitField(_l("Attach to this visit"))


class CloseForm(Form):
    """Close: a payment method that must be chosen (no default), optionally a second one for
    part of the amount, then a confirmation naming the amount (``confirm`` and ``expected``)."""

    payment_method = SelectField(_l("Payment method"), validators=[DataRequired(_l("Choose how the visitor pays."))])
    second_method = SelectField(_l("Split: second method"), validators=[Optional()])
    second_amount = AmountField(_l("paying (€)"), [Optional()], places=2, minimum=Decimal("0.01"),
                                maximum=Decimal(100000))  # fmt: skip
    confirm = HiddenField()
    expected = HiddenField()
    submit = SubmitField(_l("Close…"))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        blank = [("", str(_l("— choose —")))]
        self.payment_method.choices = blank + payment_choices()
        self.second_method.choices = [("", "—")] + [c for c in payment_choices() if c[0] not in ("free", "due")]


class CorrectLineForm(Form):
    """Take a line back on an open visit: all of it (quantity empty) or down to a quantity."""

    line = SelectField(_l("Line"), validators=[DataRequired()])
    quantity = AmountField(_l("New quantity (empty: remove the line)"), [Optional()], places=3,
                           minimum=Decimal("0.001"), maximum=Decimal(10000))  # fmt: skip
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=200)])
    submit = SubmitField(_l("Correct the line"))


class CreditNoteForm(Form):
    """A credit note on a closed visit's receipt: the whole of it, or the quantities typed per line."""

    whole = BooleanField(_l("All that is left of the receipt"))
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=200)])
    method = SelectField(_l("Refunded by"), validators=[DataRequired()])
    submit = SubmitField(_l("Issue the credit note"))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.method.choices = [c for c in payment_choices() if c[0] not in ("free", "due")]


class InvoicePaymentForm(Form):
    """The payment of an invoice left to pay: how, and the day the money came (a date input
    sends 2026-12-05 whatever the browser's language)."""

    method = SelectField(_l("Paid by"), validators=[DataRequired(_l("Choose how it was paid."))])
    paid_on = StringField(_l("On"), validators=[DataRequired(), Regexp(r"^\d{4}-\d{2}-\d{2}$",
                          message=_l("A date like 2026-12-05."))], render_kw={"type": "date"})  # fmt: skip
    submit = SubmitField(_l("Record the payment"))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        later = ("transfer", "cheque", "card", "cash")
        blank = [("", str(_l("— choose —")))]
        self.method.choices = blank + [c for c in payment_choices() if c[0] in later]


class MachineForm(Form):
    id = StringField(_l("Id (as the agent names it)"), validators=[DataRequired(), IDENT])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    kind = SelectField(_l("Kind"), choices=[(k, LABELS["machine_kind"][k]) for k in MACHINE_KINDS])
    agent = StringField(_l("Agent"), validators=[Optional(), IDENT])
    material = SelectField(_l("Loaded material"), validators=[Optional()])
    active = BooleanField(_l("Active"), default=True)
    submit = SubmitField(_l("Save"))


class MaterialForm(Form):
    code = StringField(_l("Code"), validators=[DataRequired(), CODE])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    diameter_mm = AmountField(_l("Diameter (mm)"), [InputRequired()], places=3, default=Decimal("1.75"), minimum=Decimal("0.1"), maximum=Decimal(10))  # fmt: skip
    density = AmountField(_l("Density (g/cm³)"), [InputRequired()], places=3, default=Decimal("1.24"), minimum=Decimal("0.1"), maximum=Decimal(25))  # fmt: skip
    price_per_kg = AmountField(_l("Price per kg (€)"), [InputRequired()], places=2, minimum=Decimal(0), maximum=Decimal(100000))  # fmt: skip
    active = BooleanField(_l("Active"), default=True)
    submit = SubmitField(_l("Save"))


class CategoryForm(Form):
    code = StringField(_l("Code"), validators=[DataRequired(), CODE])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    active = BooleanField(_l("Active"), default=True)
    submit = SubmitField(_l("Save"))


class ItemAdminForm(Form):
    code = StringField(_l("Code"), validators=[DataRequired(), CODE])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    unit = StringField(_l("Unit"), default="pièce", validators=[DataRequired(), Length(max=20)])
    price = AmountField(_l("Price (€)"), [InputRequired()], places=2, minimum=Decimal(0), maximum=Decimal(100000))  # fmt: skip
    grants = SelectField(_l("Selling it grants the training"), default="")
    validity_days = CountField(_l("Training valid for (days, empty: no expiry)"), [Optional()], minimum=1, maximum=36600)  # fmt: skip
    active = BooleanField(_l("Active"), default=True)
    submit = SubmitField(_l("Save"))


class TariffForm(Form):
    machine = SelectField(_l("Machine"), validators=[DataRequired()])
    category = SelectField(_l("Category"), validators=[DataRequired()])
    unit_price = AmountField(_l("Price per unit (€)"), [InputRequired()], places=2, minimum=Decimal(0), maximum=Decimal(10000))  # fmt: skip
    unit_s = CountField(_l("Time unit (seconds)"), [InputRequired()], default=60, minimum=1, maximum=86400)
    minimum_units = CountField(_l("Minimum units"), [InputRequired()], default=0, minimum=0, maximum=10000)
    start_fee = AmountField(_l("Start fee (€)"), [InputRequired()], places=2, default=Decimal(0), minimum=Decimal(0), maximum=Decimal(10000))  # fmt: skip
    grace_s = CountField(_l("Free grace period (seconds)"), [InputRequired()], default=0, minimum=0, maximum=86400)
    basis = SelectField(_l("Time counted"), choices=[(b, LABELS["basis"][b]) for b in TIME_BASES])
    material_applies = BooleanField(_l("Charge material"))
    submit = SubmitField(_l("Save as a new version"))


class WallLinkForm(Form):
    label = StringField(_l("Where the screen is"), validators=[DataRequired(), Length(max=80)])
    submit = SubmitField(_l("Make a wall-screen link"))


class UserForm(Form):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=40)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(min=10, max=200)])
    role = SelectField(_l("Role"), choices=[(r, LABELS["role"][r]) for r in ROLES])
    submit = SubmitField(_l("Create"))


class UserEditForm(Form):
    role = SelectField(_l("Role"), choices=[(r, LABELS["role"][r]) for r in ROLES])
    active = BooleanField(_l("Active"))
    password = PasswordField(_l("New password (empty: unchanged)"),
                             validators=[Optional(), Length(min=10, max=200)])
    submit = SubmitField(_l("Save"))


class PeriodForm(Form):
    """The reports' period (a GET form: no CSRF needed, nothing changes)."""

    class Meta:
        csrf = False

    start = StringField(_l("From"), validators=[Optional(), Regexp(r"^\d{4}-\d{2}-\d{2}$")])
    end = StringField(_l("To"), validators=[Optional(), Regexp(r"^\d{4}-\d{2}-\d{2}$")])
    step = SelectField(_l("Per"), choices=[("day", _l("day")), ("month", _l("month"))], default="day")
    by = SelectField(_l("By"), choices=[("machine", _l("machine")), ("category", _l("category")),
                                         ("payment", _l("payment method"))], default="machine")  # fmt: skip


class SendDocumentForm(Form):
    """Send a document by e-mail: to the customer's address, or one typed at the desk."""

    to = StringField(_l("E-mail address"), validators=[DataRequired(), Length(max=200)])
    submit = SubmitField(_l("Send by e-mail"))


class OutOfServiceForm(Form):
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=300)])
    submit = SubmitField(_l("Put out of service"))


class ServiceRecordForm(Form):
    what = StringField(_l("What was done"), validators=[DataRequired(), Length(max=2000)])
    submit = SubmitField(_l("Record the service"))


class ThresholdsForm(Form):
    hours = CountField(_l("Service every (busy hours)"), [Optional()], minimum=1, maximum=999999)
    jobs = CountField(_l("Service every (jobs)"), [Optional()], minimum=1, maximum=999999)
    metres = CountField(_l("Service every (metres of filament)"), [Optional()], minimum=1, maximum=999999)
    submit = SubmitField(_l("Save the thresholds"))


class QualificationForm(Form):
    code = StringField(_l("Qualification code"), validators=[DataRequired(), IDENT, Length(max=40)])
    name = StringField(_l("Training required (name)"), validators=[DataRequired(), Length(max=120)])
    submit = SubmitField(_l("Require this training"))


class GrantForm(Form):
    qualification = SelectField(_l("Qualification"), validators=[DataRequired()])
    supervised = BooleanField(_l("Supervised session, this visit only"))
    days = CountField(_l("Valid for (days, empty: no expiry)"), [Optional()], minimum=1, maximum=36600)
    submit = SubmitField(_l("Grant"))


class KeepPersonForm(Form):
    badge = StringField(_l("Their own badge (scan or type)"), validators=[DataRequired(), Length(max=64)])
    submit = SubmitField(_l("Keep this person"))
