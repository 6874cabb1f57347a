"""What the pages show: tables, plots, sentences, claims, the student comparison, listings, exercises, course time,
and each week's display helpers (week1 ... week6, scorecard, latency). Nothing here measures, and no record's
fingerprint covers it (lab.record.fingerprint): an edit to a plot or a sentence re-measures nothing."""
