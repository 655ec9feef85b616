"""Every form of the dashboard (Flask-WTF: each carries a CSRF token).

Validators return form errors shown beside the field; nothing a user types can cause a 500.
"""

from __future__ import annotations

from decimal import Decimal

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DecimalField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    SubmitField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from billing.models import MACHINE_KINDS, PAYMENT_METHODS, ROLES, TIME_BASES

IDENT = Regexp(r"^[a-z0-9][a-z0-9-]{0,62}$", message=_l("lowercase letters, digits and hyphens"))
CODE = Regexp(r"^[a-z0-9][a-z0-9._-]{0,39}$", message=_l("lowercase letters, digits, dots and hyphens"))


class Form(FlaskForm):  # type: ignore[misc]  # flask_wtf ships no type hints
    """A form with a CSRF token (Flask-WTF)."""


def payment_choices() -> list[tuple[str, str]]:
    names = {"cash": _l("Cash"), "card": _l("Card"), "cheque": _l("Cheque"),
             "transfer": _l("Transfer"), "free": _l("Free")}  # fmt: skip
    return [(method, str(names.get(method, method))) for method in PAYMENT_METHODS]


class LoginForm(Form):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=80)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])
    next = HiddenField()
    submit = SubmitField(_l("Log in"))


class ActionForm(Form):
    """A button that only needs its CSRF token (log out, mark waiting, unlock)."""

    submit = SubmitField(_l("OK"))


class CheckInForm(Form):
    name = StringField(_l("Name (empty for an anonymous visitor)"), validators=[Optional(), Length(max=200)])
    category = SelectField(_l("Category"), validators=[DataRequired()])
    with_pin = BooleanField(_l("Give a PIN"), default=True)
    badge = StringField(_l("Loan badge (scan or type)"), validators=[Optional(), Length(max=64)])
    submit = SubmitField(_l("Check in"))


class ItemForm(Form):
    item = SelectField(_l("Item"), validators=[DataRequired()])
    quantity = DecimalField(_l("Quantity"), default=Decimal(1), places=3,
                            validators=[InputRequired(), NumberRange(min=Decimal("0.001"), max=Decimal(10000))])  # fmt: skip
    submit = SubmitField(_l("Add"))


class DiscountForm(Form):
    amount = DecimalField(_l("Amount (€)"), places=2,
                          validators=[InputRequired(), NumberRange(min=Decimal("0.01"), max=Decimal(100000))])  # fmt: skip
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=250)])
    submit = SubmitField(_l("Apply the discount"))


class AttachForm(Form):
    session = SelectField(_l("Unassigned session"), validators=[DataRequired()])
    submit = SubmitField(_l("Attach to this visit"))


class CloseForm(Form):
    payment_method = SelectField(_l("Payment method"), validators=[DataRequired()])
    submit = SubmitField(_l("Close and issue the receipt"))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.payment_method.choices = payment_choices()


class MachineForm(Form):
    id = StringField(_l("Id (as the agent names it)"), validators=[DataRequired(), IDENT])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    kind = SelectField(_l("Kind"), choices=[(k, k) for k in MACHINE_KINDS])
    agent = StringField(_l("Agent"), validators=[Optional(), IDENT])
    material = SelectField(_l("Loaded material"), validators=[Optional()])
    active = BooleanField(_l("Active"), default=True)
    submit = SubmitField(_l("Save"))


class MaterialForm(Form):
    code = StringField(_l("Code"), validators=[DataRequired(), CODE])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    diameter_mm = DecimalField(_l("Diameter (mm)"), places=3, default=Decimal("1.75"),
                               validators=[InputRequired(), NumberRange(min=Decimal("0.1"), max=Decimal(10))])  # fmt: skip
    density = DecimalField(_l("Density (g/cm³)"), places=3, default=Decimal("1.24"),
                           validators=[InputRequired(), NumberRange(min=Decimal("0.1"), max=Decimal(25))])  # fmt: skip
    price_per_kg = DecimalField(_l("Price per kg (€)"), places=2,
                                validators=[InputRequired(), NumberRange(min=Decimal(0), max=Decimal(100000))])  # fmt: skip
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
    price = DecimalField(_l("Price (€)"), places=2,
                         validators=[InputRequired(), NumberRange(min=Decimal(0), max=Decimal(100000))])  # fmt: skip
    active = BooleanField(_l("Active"), default=True)
    submit = SubmitField(_l("Save"))


class TariffForm(Form):
    machine = SelectField(_l("Machine"), validators=[DataRequired()])
    category = SelectField(_l("Category"), validators=[DataRequired()])
    unit_price = DecimalField(_l("Price per unit (€)"), places=2,
                              validators=[InputRequired(), NumberRange(min=Decimal(0), max=Decimal(10000))])  # fmt: skip
    unit_s = IntegerField(_l("Time unit (seconds)"), default=60,
                          validators=[InputRequired(), NumberRange(min=1, max=86400)])
    minimum_units = IntegerField(_l("Minimum units"), default=0,
                                 validators=[InputRequired(), NumberRange(min=0, max=10000)])
    start_fee = DecimalField(_l("Start fee (€)"), places=2, default=Decimal(0),
                             validators=[InputRequired(), NumberRange(min=Decimal(0), max=Decimal(10000))])  # fmt: skip
    grace_s = IntegerField(_l("Free grace period (seconds)"), default=0,
                           validators=[InputRequired(), NumberRange(min=0, max=86400)])
    basis = SelectField(_l("Time counted"), choices=[(b, b) for b in TIME_BASES])
    material_applies = BooleanField(_l("Charge material"))
    submit = SubmitField(_l("Save as a new version"))


class UserForm(Form):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=40)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(min=10, max=200)])
    role = SelectField(_l("Role"), choices=[(r, r) for r in ROLES])
    submit = SubmitField(_l("Create"))


class UserEditForm(Form):
    role = SelectField(_l("Role"), choices=[(r, r) for r in ROLES])
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
