"""Forms of the QA review pages (Django admin)."""

from __future__ import annotations

from django import forms
from django.contrib.admin.helpers import ActionForm

from .models import RejectionReason

REASON_CHOICES = [("", "— reason (for reject) —"), *RejectionReason.choices]


class DecisionForm(forms.Form):
    """Approve (with an override reason when a check failed, errored or has not run), or reject
    with a reason from the fixed list (and a comment; required for 'other'). Which one is decided
    by the button pressed (``decision``)."""

    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    reason = forms.ChoiceField(choices=REASON_CHOICES, required=False)
    comment = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2, "cols": 50})
    )
    #: shown only when a check failed, errored or has not run; the service decides if it is needed
    override_reason = forms.CharField(
        required=False,
        max_length=1000,
        label="Approve anyway because",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 50}),
    )

    def clean(self):
        data = super().clean()
        if data.get("decision") == "reject":
            if not data.get("reason"):
                self.add_error("reason", "Pick a reason to reject.")
            elif data["reason"] == RejectionReason.OTHER and not data.get("comment", "").strip():
                self.add_error("comment", "Say what is wrong when the reason is 'other'.")
        return data


class QAActionForm(ActionForm):
    """The changelist's action bar, with the reason and comment bulk rejection needs."""

    reason = forms.ChoiceField(choices=REASON_CHOICES, required=False)
    comment = forms.CharField(required=False, max_length=2000)
