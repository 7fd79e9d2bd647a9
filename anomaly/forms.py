"""Forms of the compliance UI: filtering the flag list and deciding a flag."""

from __future__ import annotations

from django import forms

from anomaly.models import Flag
from anomaly.selectors import FlagFilters

DECISIONS = [(value, label) for value, label in Flag.Status.choices if value != Flag.Status.OPEN]


class FlagFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "any"), *Flag.Status.choices], required=False)
    min_score = forms.FloatField(required=False, min_value=0.0, max_value=1.0, label="Min score")
    partner = forms.CharField(
        required=False, max_length=200, help_text="GLN or part of the name, sender or receiver", label="Partner"
    )
    gtin = forms.CharField(required=False, max_length=14, label="GTIN")
    lot = forms.CharField(required=False, max_length=20, label="Lot")

    def filters(self) -> FlagFilters:
        """The selector's filters from a valid form: a 13-digit partner is a GLN, anything else part of a name."""
        data = self.cleaned_data
        partner = data["partner"].strip()
        is_gln = len(partner) == 13 and partner.isdigit()
        return FlagFilters(
            statuses=(data["status"],) if data["status"] else (),
            min_score=data["min_score"],
            partner=partner if is_gln else None,
            partner_name=partner if partner and not is_gln else None,
            gtin=data["gtin"].strip() or None,
            lot=data["lot"].strip() or None,
        )


class FlagDecisionForm(forms.Form):
    # A decision moves a flag on; "open" is where scoring puts it (to look again, decide "investigating").
    status = forms.ChoiceField(choices=DECISIONS, widget=forms.RadioSelect)
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=4000,
        help_text="Required: what you checked, with whom, what you found. It is kept with your name.",
    )
