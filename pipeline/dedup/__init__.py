"""Near-duplicate detection: text sketches (`sketch`), the banded index that finds candidates
across customers (`sketch.band_keys`), and the team's test set with its evaluation (`testset`, `evaluate`)."""
