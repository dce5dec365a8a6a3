"""Content files (YAML under ``flows/``, ``nlu_data/``, ``updates/``): one line-mapped loader,
one error type naming ``file:line``, one condition language, one duration syntax and one way
to fill a text's placeholders."""
