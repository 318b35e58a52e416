"""`python -m tools.sample_generator --out sample_data`."""

from tools.sample_generator.generate import main

raise SystemExit(main())
