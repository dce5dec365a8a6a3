"""The embedded NLU: Rasa-format data, language identification, intents, entities."""
