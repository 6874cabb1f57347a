"""The record machinery: the store and `measured`, the code fingerprint, the records a page showed, provenance
(env), where things live (paths), locks, owned temporary files (scratch) and progress. It imports nothing from the
library above it, and no record's fingerprint covers it: editing the lock or the store re-measures nothing."""
