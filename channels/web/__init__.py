"""Web channel: WebSocket chat, the embeddable widget, Rasa's REST channel."""

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATES = Path(__file__).resolve().parent / "templates"


def page_templates() -> Environment:
    """The web pages' templates (demo shop, staff console), HTML escaped by default."""
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"])
    )
