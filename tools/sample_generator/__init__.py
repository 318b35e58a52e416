"""Deterministic generator of the shipped sample data (``sample_data/``).

The real corpora cannot be shipped (size, licences), but every stage after the download must be
exercised on files with exactly the real layout. So this package writes, for each of the seven
datasets, the same files a real download puts on disk (file names, archive member paths, line
formats, headers, special tokens, separators; see :mod:`della.data.raw`) filled with English
text built from word lists and templates.

The text is synthetic but not random noise: each dataset has a *latent structure* that a VAE
can pick up, so the sample-scale experiments measure something (yelp: star label drives the
sentiment words, business type drives the nouns; yahoo: ten answer categories; ptb: news
topics; snli: hypotheses entailed / contradicted / neutral w.r.t. the premise; cnn_dailymail:
highlights restate the article's key facts; writingprompts: the story uses the prompt's
characters and setting; quora: duplicates are paraphrases of one question, non-duplicates share
the topic but differ).

Everything is a pure function of ``seed``: each dataset has its own ``random.Random`` stream,
and archives are byte-identical across runs (tar/gzip mtime 0, sorted members, fixed owner,
zip entries with a fixed date). Compressed bytes also depend on the zlib build; README.md
records the zlib version that made the shipped files.

One module per dataset (its word lists, templates and archive), beside what they share
(archives.py, common.py, he2019.py for Yelp and Yahoo); generate.py writes them all.

Usage: ``python -m tools.sample_generator --out sample_data`` or
``tools.sample_generator.generate.generate_all(Path("sample_data"))``.
"""
