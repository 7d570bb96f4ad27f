"""The release record's typed sections (``mlops.release.record`` holds the record itself: its file, its
status and its steps), one module per part of the release that writes them: ``pins`` (model,
environment), ``endpoint`` (slots, traffic, rollback), ``loadtest`` (baseline, load, quality),
``promotion`` (rollout steps, health, shadow, served windows) and ``batch``.

Each section is a plain dataclass; ``mlops.release.typed_json`` maps them to JSON and back, and a
field named ``extra`` keeps the keys a section does not know. A field's name and order are its JSON
key and position: ``tests/release/full_record.json`` pins the serialised form.
"""
