"""Datasets: readers of the raw download formats (:mod:`della.data.raw`), preprocessing into
the jsonl splits of ``docs/interfaces.md`` (:mod:`della.data.preprocess`) and the generator of
the shipped sample data (:mod:`tools.sample_generator`)."""
