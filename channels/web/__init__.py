"""Web channel: WebSocket chat, the embeddable widget, Rasa's REST channel."""
