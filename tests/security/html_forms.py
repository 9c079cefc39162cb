"""Filling a page's HTML form as a browser would: the fields and values the page gives,
then the test's own values on top, posted with Django's test client."""

from __future__ import annotations

from html.parser import HTMLParser

from django.test import Client


class FormReader(HTMLParser):
    """The fields of the POST forms of a page, with the values the page gives them."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._form: dict | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and (a.get("method") or "").lower() == "post":
            self._form = {"action": a.get("action") or "", "fields": {}}
            self.forms.append(self._form)
        if self._form is None:
            return
        fields = self._form["fields"]
        if tag == "input" and a.get("name"):
            kind = (a.get("type") or "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    fields[a["name"]] = a.get("value", "on")
            elif kind not in ("submit", "button", "file"):
                fields[a["name"]] = a.get("value") or ""
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
        elif tag == "option" and self._select:
            if "selected" in a or self._select not in fields:
                fields[self._select] = a.get("value", "")
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            fields[a["name"]] = ""

    def handle_data(self, data):
        if self._form is not None and self._textarea:
            self._form["fields"][self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self._form = None


def submit(client: Client, page: str, values: dict, *, having: str, action: str | None = None):
    """Fill the page's POST form that has the field `having` with `values`, and post it."""
    reader = FormReader()
    reader.feed(client.get(page).content.decode())
    form = next(f for f in reader.forms if having in f["fields"])
    fields = {k: v for k, v in form["fields"].items() if k != "csrfmiddlewaretoken"}
    fields.update(values)
    return client.post(action or form["action"] or page, fields, follow=True)
